/**
 * The hot JSON answers carry the secure headers from the start (edge/app.ts `json`, a plain
 * header object that keeps @hono/node-server on its fast path under load); every other answer
 * gets them set afterwards. Either way each answer must carry the same headers that Hono's
 * secureHeaders middleware with our options sets, in-process and over a real Node socket.
 */
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureApp, FIXTURE_MODELS, image } from './helpers.ts';
import { startServer, type RunningServer } from './servers.ts';

const SECURE = [
  'content-security-policy',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
  'origin-agent-cluster',
  'referrer-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-frame-options',
  'x-permitted-cross-domain-policies',
  'x-xss-protection',
];

const secureOf = (headers: Headers) => Object.fromEntries(SECURE.map((h) => [h, headers.get(h)]));

const png = image('sneaker.png');
const CASES: [string, string, RequestInit, number][] = [
  ['classify 200 (fast path)', '/v1/classify?subtask=shoes', { method: 'POST', body: png, headers: { 'content-type': 'image/png' } }, 200],
  ['client error 400 (fast path)', '/v1/classify', { method: 'POST', body: 'not a png', headers: { 'content-type': 'image/png' } }, 400],
  ['client error 415 (fast path)', '/v1/classify', { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } }, 415],
  ['413 from the Content-Length (fast path)', '/v1/classify', { method: 'POST', body: 'x', headers: { 'content-type': 'image/png', 'content-length': String(64 * 2 ** 20) } }, 413],
  ['/healthz (fast path)', '/healthz', {}, 200],
  ['/v1/models (fast path)', '/v1/models', {}, 200],
  ['/openapi.json (set afterwards)', '/openapi.json', {}, 200],
  ['KServe /v2 (set afterwards)', '/v2', {}, 200],
  ['404 (set afterwards)', '/nowhere', {}, 404],
  ['demo page (set afterwards)', '/', {}, 200],
];

describe('secure headers on every answer', () => {
  let expected: Record<string, string | null>;
  beforeAll(async () => {
    const { app } = await fixtureApp();
    expected = secureOf((await app.request('/')).headers);
  });

  it('are the full secureHeaders set with our CSP', () => {
    for (const h of SECURE) expect(expected[h], h).toBeTruthy();
    expect(expected['content-security-policy']).toMatch(/default-src 'self'.*frame-ancestors 'none'/);
  });

  it.each(CASES)('in-process: %s', async (_name, path, init, status) => {
    const { app } = await fixtureApp();
    const res = await app.request(path, init);
    expect(res.status).toBe(status);
    expect(secureOf(res.headers)).toEqual(expected);
    if (path.startsWith('/v1/') || path === '/healthz') expect(res.headers.get('content-type')).toBe('application/json');
  });

  it('with an API key: a 401 keeps its WWW-Authenticate and gets the secure headers', async () => {
    const { app } = await fixtureApp({ apiKey: 'k' });
    const res = await app.request('/v1/models');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(secureOf(res.headers)).toEqual(expected);
    const ok = await app.request('/v1/models', { headers: { authorization: 'Bearer k' } });
    expect(ok.status).toBe(200);
    expect(secureOf(ok.headers)).toEqual(expected);
  });

  it('with CORS on: CORS and secure headers both', async () => {
    const { app } = await fixtureApp({ cors: ['https://example.test'] });
    const res = await app.request('/v1/models', { headers: { origin: 'https://example.test' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://example.test');
    expect(secureOf(res.headers)).toEqual(expected);
  });

  describe('over a real socket on the Node server', () => {
    let server: RunningServer;
    beforeAll(async () => {
      server = await startServer('node', FIXTURE_MODELS, { ready: true });
    }, 60_000);
    afterAll(() => server?.stop());

    it.each(CASES.filter(([name]) => !name.startsWith('413')))('%s', async (_name, path, init, status) => {
      const res = await fetch(`${server.url}${path}`, init);
      await res.arrayBuffer();
      expect(res.status).toBe(status);
      expect(secureOf(res.headers)).toEqual(expected);
    });

    it('413 over the limit closes the connection: the server drops the rest of the upload, so a client must not reuse it', async () => {
      // node:http, not fetch: fetch cannot send a Content-Length its body does not have, nor say which socket it used.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const post = (headers: Record<string, string>, body: Uint8Array) =>
        new Promise<{ status: number; headers: IncomingHttpHeaders; body: string; reused: boolean }>((resolve, reject) => {
          const req = request(`${server.url}/v1/classify?subtask=shoes`, { method: 'POST', agent, headers }, (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text, reused: req.reusedSocket }));
          });
          req.on('error', reject);
          req.end(body);
        });
      try {
        const ok = await post({ 'content-type': 'image/png' }, png);
        expect(ok.status).toBe(200);
        expect(ok.headers.connection).toBe('keep-alive');
        // 64 MiB announced, a first chunk sent: answered before the body arrives.
        const refused = await post({ 'content-type': 'image/png', 'content-length': String(64 * 2 ** 20) }, new Uint8Array(2 ** 16));
        expect(refused.status).toBe(413);
        expect(JSON.parse(refused.body).error.code).toBe('payload_too_large');
        expect(refused.headers.connection).toBe('close');
        expect(secureOf(new Headers(refused.headers as Record<string, string>))).toEqual(expected);
        const after = await post({ 'content-type': 'image/png' }, png);
        expect(after.status).toBe(200);
        expect(after.reused).toBe(false);
      } finally {
        agent.destroy();
      }
    });
  });
});
