/**
 * Requests must not leave memory behind: after warm-up, 3,000 good and bad requests (with
 * Content-Length, as HTTP clients send them) leave the JS heap, after GC, where it was.
 * A leak of 1 KB per request would show as 3 MB.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { fixtureApp, image } from './helpers.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapAfterGc = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

describe('memory', () => {
  it('serving good and bad requests does not grow the JS heap', async () => {
    const { app } = await fixtureApp();
    const png = image('sneaker.png');
    const requests: RequestInit[] = [
      { method: 'POST', body: png, headers: { 'content-type': 'image/png', 'content-length': String(png.length) } },
      { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain', 'content-length': '1' } },
      { method: 'POST', body: '{"image":"@@"}', headers: { 'content-type': 'application/json', 'content-length': '14' } },
    ];
    const round = async (n: number) => {
      for (let i = 0; i < n; i++) await (await app.request('/v1/classify?subtask=shoes', requests[i % requests.length])).text();
    };
    await round(600); // warm up: sessions, codecs, JIT
    const before = heapAfterGc();
    await round(3000);
    const grown = heapAfterGc() - before;
    expect(grown, `heap grew ${(grown / 2 ** 20).toFixed(2)} MiB over 3000 requests`).toBeLessThan(1.5 * 2 ** 20);
  });
});
