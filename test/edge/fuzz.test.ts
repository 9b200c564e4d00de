/**
 * Property-based fuzzing of the decoders and request parsing: random bytes, mutated valid
 * images and random parameters never crash the process or produce a 5xx, and the app keeps
 * answering good requests correctly afterwards.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FacetApp } from '../../edge/app.ts';
import { ClientError, decodeImage, initCodecs } from '../../edge/decode.ts';
import { fixtureApp, fixtureWasm, image } from './helpers.ts';

let facet: FacetApp;
const VALID = ['shirt.png', 'sneaker.jpg', 'palette.png', 'gray16.png', 'progressive.jpg', 'rgba.png', 'cmyk.jpg'].map((n) => ({ n, bytes: image(n) }));

beforeAll(async () => {
  facet = await fixtureApp();
  await initCodecs((await fixtureWasm()).codecs);
});

/** A valid image with some bytes overwritten, a slice cut out, or its tail dropped. */
const mutatedImage = fc
  .record({
    which: fc.nat(VALID.length - 1),
    edits: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 12 }),
    cut: fc.option(fc.record({ at: fc.nat(), length: fc.nat(64) })),
    keep: fc.option(fc.double({ min: 0, max: 1, noNaN: true })),
  })
  .map(({ which, edits, cut, keep }) => {
    let b = VALID[which]!.bytes.slice();
    for (const e of edits) b[e.at % b.length] = e.value;
    if (cut) b = new Uint8Array([...b.subarray(0, cut.at % b.length), ...b.subarray((cut.at % b.length) + cut.length)]);
    if (keep !== null) b = b.slice(0, Math.floor(b.length * keep));
    return b;
  });

const randomBytes = fc.oneof(
  fc.uint8Array({ maxLength: 512 }),
  // Random bytes behind a real signature, so the header parsers and codecs get exercised.
  fc.uint8Array({ maxLength: 512 }).map((t) => new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...t])),
  fc.uint8Array({ maxLength: 512 }).map((t) => new Uint8Array([0xff, 0xd8, 0xff, ...t])),
);

describe('decoder fuzzing', () => {
  it('random and mutated bytes decode or fail with a ClientError, never anything else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(randomBytes, mutatedImage), async (bytes) => {
        try {
          const img = await decodeImage(bytes, 1 << 22);
          expect(img.data.length).toBe(img.width * img.height * 4);
        } catch (err) {
          if (!(err instanceof ClientError)) throw err;
          expect([400, 422]).toContain(err.status);
        }
      }),
      { numRuns: 300, seed: 5 },
    );
    // The codecs still work after all that.
    const ok = await decodeImage(image('sneaker.jpg'), 1e6);
    expect([ok.width, ok.height]).toEqual([28, 28]);
    expect((await decodeImage(image('shirt.png'), 1e6)).width).toBe(28);
  });
});

describe('request fuzzing', () => {
  const contentTypes = fc.constantFrom('image/png', 'image/jpeg', 'application/json', 'multipart/form-data; boundary=x', 'text/plain', '', 'image/png; charset=utf-8');
  const queryValue = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('Shirt', 'Sneaker,Sandal', '7,5', '', '0', '-1', '1e9', 'tops', 'shoes', 'full'));
  const randomQuery = fc.record({ classes: fc.option(queryValue), subtask: fc.option(queryValue), model: fc.option(queryValue), top_k: fc.option(queryValue) }).map((q) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== null) p.set(k, v);
    return p.toString();
  });
  const query = fc.oneof(fc.constant(''), fc.constant('classes=Sneaker,Sandal'), randomQuery);
  const jsonBody = fc.oneof(
    fc.json(),
    fc.record({ image: fc.oneof(fc.string(), fc.base64String(), fc.constant(`data:image/png;base64,${Buffer.from(image('shirt.png')).toString('base64')}`)) }).map((o) => JSON.stringify(o)),
    fc.record({ images: fc.array(fc.base64String(), { maxLength: 3 }), top_k: fc.anything() }).map((o) => JSON.stringify(o)),
  );
  const body = fc.oneof(randomBytes, mutatedImage, jsonBody.map((s) => new TextEncoder().encode(s)), fc.constant(image('shirt.png')), fc.constant(image('sneaker.jpg')));

  it('random bodies, content types and parameters never give a 5xx', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(contentTypes, query, body, async (type, q, bytes) => {
        const res = await facet.app.request(`/v1/classify?${q}`, { method: 'POST', body: bytes as Uint8Array<ArrayBuffer>, headers: type ? { 'content-type': type } : {} });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status).toBeLessThan(500);
        const json = (await res.json()) as { error?: { code: string; message: string } };
        if (res.status >= 400) expect(typeof json.error?.code).toBe('string');
      }),
      { numRuns: 400, seed: 11 },
    );
    // The run exercised both successes and several kinds of refusal.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    expect([...statuses.keys()].filter((s) => s >= 400).length).toBeGreaterThanOrEqual(3);
    const good = await facet.app.request('/v1/classify?subtask=shoes', { method: 'POST', body: image('sneaker.png'), headers: { 'content-type': 'image/png' } });
    expect(good.status).toBe(200);
  });

  it('random KServe inference bodies never give a 5xx', async () => {
    const tensor = fc.record({
      name: fc.constantFrom('input', 'x'),
      shape: fc.array(fc.integer({ min: -1, max: 40 }), { maxLength: 5 }),
      datatype: fc.constantFrom('FP32', 'INT8', 'BYTES'),
      data: fc.array(fc.oneof(fc.double(), fc.string(), fc.constant(null)), { maxLength: 20 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.json(), fc.record({ inputs: fc.array(tensor, { maxLength: 2 }) }).map((o) => JSON.stringify(o))), async (text) => {
        const res = await facet.app.request('/v2/models/tops/infer', { method: 'POST', body: text, headers: { 'content-type': 'application/json' } });
        expect(res.status).toBeLessThan(500);
      }),
      { numRuns: 200, seed: 3 },
    );
  });
});
