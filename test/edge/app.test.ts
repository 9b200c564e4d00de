import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FacetApp } from '../../edge/app.ts';
import { createApp } from '../../edge/app.ts';
import { MemoryModelStore } from '../../edge/store.ts';
import { preprocess } from '../../shared/preprocess.ts';
import { decodeImage } from '../../edge/decode.ts';
import { FIXTURE_MODELS, fixtureApp, fixtureWasm, image, jpegHeaderClaiming, pngHeaderClaiming, toBase64 } from './helpers.ts';

type Json = any;
let facet: FacetApp;
const LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

const post = (path: string, body: BodyInit, type?: string, headers: Record<string, string> = {}) =>
  facet.app.request(path, { method: 'POST', body, headers: { ...(type ? { 'content-type': type } : {}), ...headers } });
const classifyPng = (name: string, query = '') => post(`/v1/classify${query}`, image(name), 'image/png');

async function expectError(res: Response, status: number, code: string, messageLike?: RegExp): Promise<Json> {
  expect(res.status).toBe(status);
  const body = (await res.json()) as Json;
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  if (messageLike) expect(body.error.message).toMatch(messageLike);
  return body;
}

/** Logits straight from the model through the KServe route, for an independent softmax. */
async function logitsOf(model: string, png: string): Promise<number[]> {
  const manifest = facet.manifest.models.find((m) => m.id === model)!;
  const raw = await decodeImage(image(png), 1e8);
  const x = preprocess(raw, manifest.input);
  const res = await post(`/v2/models/${model}/infer`, JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(x) }] }), 'application/json');
  expect(res.status).toBe(200);
  return ((await res.json()) as Json).outputs[0].data;
}

const softmax = (xs: number[]) => {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

beforeAll(async () => {
  facet = await fixtureApp();
});

describe('health, models, docs', () => {
  it('answers /healthz and /readyz with every model loaded', async () => {
    expect(await (await facet.app.request('/healthz')).json()).toEqual({ status: 'ok' });
    const ready = await facet.app.request('/readyz');
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as Json;
    expect(body.ready).toBe(true);
    expect(body.models.map((m: Json) => [m.id, m.state])).toEqual([['full', 'ready'], ['tops', 'ready'], ['shoes', 'ready']]);
  });

  it('lists the manifest models with classes, MACs and params', async () => {
    const body = (await (await facet.app.request('/v1/models')).json()) as Json;
    const manifest = JSON.parse(readFileSync(`${FIXTURE_MODELS}/manifest.json`, 'utf8'));
    expect(body.labels).toEqual(LABELS);
    expect(body.models.map((m: Json) => m.id)).toEqual(['full', 'tops', 'shoes']);
    body.models.forEach((m: Json, i: number) => {
      expect(m.macs).toBe(manifest.models[i].macs);
      expect(m.params).toBe(manifest.models[i].params);
      expect(m.classes).toEqual(manifest.models[i].classes);
    });
  });

  it('documents every route in /openapi.json', async () => {
    const doc = (await (await facet.app.request('/openapi.json')).json()) as Json;
    expect(doc.openapi).toBe('3.1.0');
    for (const p of ['/v1/classify', '/v1/models', '/healthz', '/readyz', '/admin/reload', '/metrics', '/v2/health/live', '/v2/health/ready', '/v2/models/{name}', '/v2/models/{name}/ready', '/v2/models/{name}/infer']) {
      expect(doc.paths[p], p).toBeDefined();
    }
  });

  it('answers unknown routes with the JSON error shape', async () => {
    await expectError(await facet.app.request('/nope'), 404, 'not_found');
  });
});

describe('POST /v1/classify', () => {
  it('classifies a raw PNG with the full model: softmax over all classes, top 5 by default', async () => {
    const res = await classifyPng('shirt.png');
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body.model.id).toBe('full');
    expect(body.model.subtask).toBeNull();
    expect(body.predictions).toHaveLength(5);
    const scores = softmax(await logitsOf('full', 'shirt.png'));
    const expected = scores.map((score, index) => ({ index, label: LABELS[index], score })).sort((a, b) => b.score - a.score).slice(0, 5);
    body.predictions.forEach((p: Json, i: number) => {
      expect(p.index).toBe(expected[i]!.index);
      expect(p.label).toBe(expected[i]!.label);
      expect(p.score).toBeCloseTo(expected[i]!.score, 5);
    });
    for (const k of ['decode_ms', 'infer_ms', 'total_ms']) expect(body.timing[k]).toBeGreaterThanOrEqual(0);
    expect(body.timing.total_ms).toBeGreaterThanOrEqual(body.timing.infer_ms);
  });

  it('picks the fewest-MACs model covering the classes', async () => {
    const macs = Object.fromEntries(facet.manifest.models.map((m) => [m.id, m.macs]));
    expect(macs.shoes).toBeLessThan(macs.full);
    expect(macs.tops).toBeLessThan(macs.full);
    const shoes = (await (await classifyPng('sneaker.png', '?classes=Sneaker,Sandal')).json()) as Json;
    expect(shoes.model.id).toBe('shoes');
    expect(shoes.predictions.map((p: Json) => p.label).sort()).toEqual(['Sandal', 'Sneaker']);
    const byIndex = (await (await classifyPng('sneaker.png', '?classes=7,5')).json()) as Json;
    expect(byIndex.model.id).toBe('shoes');
    expect(byIndex.predictions).toEqual(shoes.predictions);
    const tops = (await (await classifyPng('shirt.png', '?classes=shirt,coat')).json()) as Json;
    expect(tops.model.id).toBe('tops');
    // Scores are a softmax over the requested classes of that model's logits.
    const logits = await logitsOf('tops', 'shirt.png'); // outputs: T-shirt/top, Pullover, Coat, Shirt
    const [coat, shirt] = softmax([logits[2]!, logits[3]!]);
    const got = Object.fromEntries(tops.predictions.map((p: Json) => [p.label, p.score]));
    expect(got.Coat).toBeCloseTo(coat!, 5);
    expect(got.Shirt).toBeCloseTo(shirt!, 5);
  });

  it('falls back to the full model with scores restricted when no subtask covers the classes', async () => {
    const body = (await (await classifyPng('sneaker.png', '?classes=Sneaker,Shirt,Bag&top_k=10')).json()) as Json;
    expect(body.model.id).toBe('full');
    expect(body.model.classes.map((c: Json) => c.label)).toEqual(['Shirt', 'Sneaker', 'Bag']);
    expect(body.predictions).toHaveLength(3);
    const logits = await logitsOf('full', 'sneaker.png');
    const expected = softmax([logits[6]!, logits[7]!, logits[8]!]);
    const got = Object.fromEntries(body.predictions.map((p: Json) => [p.index, p.score]));
    expect(got[6]).toBeCloseTo(expected[0]!, 5);
    expect(got[7]).toBeCloseTo(expected[1]!, 5);
    expect(got[8]).toBeCloseTo(expected[2]!, 5);
  });

  it('honours subtask and model parameters', async () => {
    const sub = (await (await classifyPng('shirt.png', '?subtask=tops&top_k=10')).json()) as Json;
    expect(sub.model.id).toBe('tops');
    expect(sub.predictions).toHaveLength(4);
    expect(sub.predictions.reduce((s: number, p: Json) => s + p.score, 0)).toBeCloseTo(1, 5);
    const model = (await (await classifyPng('shirt.png', '?model=full&top_k=2')).json()) as Json;
    expect(model.model.id).toBe('full');
    expect(model.predictions).toHaveLength(2);
    for (let i = 1; i < model.predictions.length; i++) expect(model.predictions[i - 1].score).toBeGreaterThanOrEqual(model.predictions[i].score);
  });

  it('classifies a JPEG and JSON base64 / data-URL bodies the same as the raw body', async () => {
    const raw = (await (await classifyPng('shirt.png', '?top_k=10')).json()) as Json;
    const b64 = (await (await post('/v1/classify', JSON.stringify({ image: toBase64(image('shirt.png')), top_k: 10 }), 'application/json')).json()) as Json;
    const dataUrl = (await (await post('/v1/classify?top_k=10', JSON.stringify({ image: `data:image/png;base64,${toBase64(image('shirt.png'))}` }), 'application/json')).json()) as Json;
    expect(b64.predictions).toEqual(raw.predictions);
    expect(dataUrl.predictions).toEqual(raw.predictions);
    const jpeg = await post('/v1/classify', image('sneaker.jpg'), 'image/jpeg');
    expect(jpeg.status).toBe(200);
    expect(((await jpeg.json()) as Json).predictions).toHaveLength(5);
  });

  it('classifies a multipart batch in order, equal to one-by-one answers', async () => {
    const names = ['shirt.png', 'sneaker.png', 'boot.png', 'sneaker.jpg'];
    const form = new FormData();
    for (const n of names) form.append('image', new Blob([image(n)]), n);
    form.append('classes', 'Sneaker,Sandal,Ankle boot');
    const res = await facet.app.request('/v1/classify', { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body.model.id).toBe('shoes');
    expect(body.results).toHaveLength(4);
    for (let i = 0; i < names.length; i++) {
      const type = names[i]!.endsWith('.jpg') ? 'image/jpeg' : 'image/png';
      const one = (await (await post('/v1/classify?classes=Sneaker,Sandal,Ankle%20boot', image(names[i]!), type)).json()) as Json;
      expect(body.results[i].predictions.map((p: Json) => p.label)).toEqual(one.predictions.map((p: Json) => p.label));
      body.results[i].predictions.forEach((p: Json, j: number) => expect(p.score).toBeCloseTo(one.predictions[j].score, 5));
    }
    const json = (await (await post('/v1/classify?subtask=shoes', JSON.stringify({ images: names.map((n) => toBase64(image(n))) }), 'application/json')).json()) as Json;
    expect(json.results.map((r: Json) => r.predictions)).toEqual(body.results.map((r: Json) => r.predictions));
  });

  it('decodes palette, 16-bit, RGBA, animated PNGs and progressive and CMYK JPEGs', async () => {
    for (const [name, type] of [
      ['palette.png', 'image/png'],
      ['gray16.png', 'image/png'],
      ['rgba.png', 'image/png'],
      ['animated.png', 'image/png'],
      ['progressive.jpg', 'image/jpeg'],
      ['cmyk.jpg', 'image/jpeg'],
    ] as const) {
      const res = await post('/v1/classify', image(name), type);
      expect(res.status, name).toBe(200);
      expect(((await res.json()) as Json).predictions, name).toHaveLength(5);
    }
  });

  it('decodes bytes that are a view into a larger buffer (a small Node Buffer is one, into a shared pool)', async () => {
    for (const name of ['shirt.png', 'sneaker.jpg']) {
      const view = Buffer.concat([Buffer.from('not the image'), image(name)]).subarray(13);
      expect(await decodeImage(view, 1e8), name).toEqual(await decodeImage(image(name), 1e8));
    }
  });
});

describe('errors', () => {
  const truncated = (name: string) => image(name).slice(0, Math.floor(image(name).length / 2));
  const corrupted = (name: string) => {
    const b = image(name);
    for (let i = 40; i < b.length; i += 17) b[i] = b[i]! ^ 0xa5;
    return b;
  };

  it('400 for empty, truncated, corrupted and non-image bodies', async () => {
    await expectError(await post('/v1/classify', new Uint8Array(0), 'image/png'), 400, 'bad_image', /empty/);
    await expectError(await post('/v1/classify', truncated('shirt.png'), 'image/png'), 400, 'bad_image');
    await expectError(await post('/v1/classify', corrupted('shirt.png'), 'image/png'), 400, 'bad_image');
    await expectError(await post('/v1/classify', corrupted('photo1024.jpg'), 'image/jpeg'), 400, 'bad_image');
    await expectError(await post('/v1/classify', new TextEncoder().encode('hello, I am text'), 'image/png'), 400, 'bad_image', /neither a PNG nor a JPEG/);
    await expectError(await post('/v1/classify', jpegHeaderClaiming(28, 28), 'image/jpeg'), 400, 'bad_image');
  });

  it('422 for images whose header claims too many pixels, before decoding', async () => {
    await expectError(await post('/v1/classify', pngHeaderClaiming(50_000, 50_000), 'image/png'), 422, 'too_many_pixels', /50000×50000/);
    await expectError(await post('/v1/classify', jpegHeaderClaiming(50_000, 50_000), 'image/jpeg'), 422, 'too_many_pixels');
  });

  it('415 for a missing or unsupported content type', async () => {
    await expectError(await facet.app.request('/v1/classify', { method: 'POST', body: image('shirt.png') }), 415, 'unsupported_media_type', /missing/);
    await expectError(await post('/v1/classify', image('shirt.png'), 'image/webp'), 415, 'unsupported_media_type');
    await expectError(await post('/v1/classify', 'x', 'text/plain'), 415, 'unsupported_media_type');
  });

  it('400 for malformed multipart, JSON and base64', async () => {
    await expectError(await post('/v1/classify', '--xx\r\nContent-Disposition: form-data; name="image"\r\n\r\nabc', 'multipart/form-data; boundary=xx'), 400, 'bad_request');
    await expectError(await post('/v1/classify', '{"image": ', 'application/json'), 400, 'bad_request', /malformed JSON/);
    await expectError(await post('/v1/classify', '[1,2]', 'application/json'), 400, 'bad_request');
    await expectError(await post('/v1/classify', JSON.stringify({ image: '***not base64***' }), 'application/json'), 400, 'bad_request', /base64/);
    await expectError(await post('/v1/classify', JSON.stringify({ image: toBase64(new TextEncoder().encode('garbage bytes')) }), 'application/json'), 400, 'bad_image');
    await expectError(await post('/v1/classify', JSON.stringify({ picture: 'x' }), 'application/json'), 400, 'bad_request');
    const form = new FormData();
    form.append('other', 'x');
    await expectError(await facet.app.request('/v1/classify', { method: 'POST', body: form }), 400, 'bad_request', /no "image"/);
  });

  it('413 for a batch of 33', async () => {
    const form = new FormData();
    for (let i = 0; i < 33; i++) form.append('image', new Blob([image('shirt.png')]), `${i}.png`);
    await expectError(await facet.app.request('/v1/classify', { method: 'POST', body: form }), 413, 'batch_too_large', /33/);
    const json = JSON.stringify({ images: Array.from({ length: 33 }, () => toBase64(image('shirt.png'))) });
    await expectError(await post('/v1/classify', json, 'application/json'), 413, 'batch_too_large');
  });

  it('400 for an unknown class (listing valid labels), 422 for duplicate or empty classes and bad top_k', async () => {
    await expectError(await classifyPng('shirt.png', '?classes=Shirt,Hat'), 400, 'unknown_class', /"Hat".*T-shirt\/top, Trouser/);
    await expectError(await classifyPng('shirt.png', '?classes=12'), 400, 'unknown_class');
    await expectError(await classifyPng('shirt.png', '?classes=Shirt,shirt'), 422, 'invalid_parameter', /twice/);
    await expectError(await classifyPng('shirt.png', '?classes=6,Shirt'), 422, 'invalid_parameter', /twice/);
    await expectError(await classifyPng('shirt.png', '?classes='), 422, 'invalid_parameter', /empty/);
    await expectError(await classifyPng('shirt.png', '?classes=Shirt,,Coat'), 422, 'invalid_parameter');
    for (const k of ['0', '-3', '1001', '99999999999999999999', 'abc', '2.5']) {
      await expectError(await classifyPng('shirt.png', `?top_k=${k}`), 422, 'invalid_parameter', /top_k/);
    }
    const huge = (await (await classifyPng('shirt.png', '?top_k=1000')).json()) as Json;
    expect(huge.predictions).toHaveLength(10);
  });

  it('422 for an unknown subtask or model, or classes outside the chosen model', async () => {
    await expectError(await classifyPng('shirt.png', '?subtask=hats'), 422, 'unknown_subtask', /tops, shoes/);
    await expectError(await classifyPng('shirt.png', '?model=nope'), 422, 'unknown_model', /full, tops, shoes/);
    await expectError(await classifyPng('shirt.png', '?subtask=tops&classes=Sneaker'), 422, 'invalid_parameter');
    await expectError(await classifyPng('shirt.png', '?model=full&subtask=tops'), 422, 'invalid_parameter');
  });

  it('413 for a body over the limit, with and without Content-Length', async () => {
    const small = await fixtureApp({ limits: { maxBodyBytes: 4096 } });
    const big = new Uint8Array(10_000);
    const withLength = await small.app.request('/v1/classify', { method: 'POST', body: big, headers: { 'content-type': 'image/png', 'content-length': String(big.length) } });
    await expectError(withLength, 413, 'payload_too_large');
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1024;
        if (pulled > 1_000_000) controller.close();
        else controller.enqueue(new Uint8Array(1024));
      },
    });
    const streamed = await small.app.request('/v1/classify', { method: 'POST', body: stream, headers: { 'content-type': 'image/png' }, duplex: 'half' } as RequestInit);
    await expectError(streamed, 413, 'payload_too_large');
    // Rejected while streaming: far less than the whole 1 MB body was read.
    expect(pulled).toBeLessThan(100_000);
    // The limited app still serves a small image.
    expect((await small.app.request('/v1/classify', { method: 'POST', body: image('shirt.png'), headers: { 'content-type': 'image/png' } })).status).toBe(200);
  });
});

describe('auth, CORS, headers, metrics', () => {
  it('with an API key, /v1/* and /v2/models/* need it; health stays open', async () => {
    const locked = await fixtureApp({ apiKey: 's3cret-key' });
    const png = { method: 'POST', body: image('shirt.png'), headers: { 'content-type': 'image/png' } };
    await expectError(await locked.app.request('/v1/classify', png), 401, 'unauthorized');
    await expectError(await locked.app.request('/v1/classify', { ...png, headers: { ...png.headers, authorization: 'Bearer wrong' } }), 401, 'unauthorized', /wrong/);
    await expectError(await locked.app.request('/v1/models', { headers: { authorization: 'Basic czNjcmV0LWtleQ==' } }), 401, 'unauthorized');
    await expectError(await locked.app.request('/v1/models'), 401, 'unauthorized');
    await expectError(await locked.app.request('/v2/models/full'), 401, 'unauthorized');
    expect((await locked.app.request('/v1/classify', { ...png, headers: { ...png.headers, authorization: 'Bearer s3cret-key' } })).status).toBe(200);
    expect((await locked.app.request('/v1/models', { headers: { authorization: 'Bearer s3cret-key' } })).status).toBe(200);
    expect((await locked.app.request('/healthz')).status).toBe(200);
    expect((await locked.app.request('/v2/health/live')).status).toBe(200);
  });

  it('CORS is off unless configured', async () => {
    const plain = await facet.app.request('/v1/models', { headers: { origin: 'https://evil.example' } });
    expect(plain.headers.get('access-control-allow-origin')).toBeNull();
    const open = await fixtureApp({ cors: ['https://ok.example'] });
    const ok = await open.app.request('/v1/models', { headers: { origin: 'https://ok.example' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://ok.example');
    const other = await open.app.request('/v1/models', { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).not.toBe('https://evil.example');
  });

  it('sets secure headers and a CSP on the demo page', async () => {
    const res = await facet.app.request('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
  });

  it('counts requests, latencies and inferences in /metrics', async () => {
    const fresh = await fixtureApp();
    await fresh.app.request('/v1/classify?subtask=shoes', { method: 'POST', body: image('boot.png'), headers: { 'content-type': 'image/png' } });
    await fresh.app.request('/v1/classify', { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } });
    const text = await (await fresh.app.request('/metrics')).text();
    expect(text).toContain('facet_http_requests_total{method="POST",route="/v1/classify",status="200"} 1');
    expect(text).toContain('facet_http_requests_total{method="POST",route="/v1/classify",status="415"} 1');
    expect(text).toContain('facet_inferences_total{model="shoes"} 1');
    expect(text).toContain('facet_inferences_total{model="full"} 0');
    expect(text).toMatch(/facet_http_request_duration_seconds_count\{route="\/v1\/classify"\} 2/);
    expect(text).toMatch(/facet_wasm_heap_bytes [1-9]\d*/);
  });
});

describe('Open Inference Protocol (KServe v2)', () => {
  it('answers health, server and model metadata', async () => {
    expect((await facet.app.request('/v2/health/live')).status).toBe(200);
    expect((await facet.app.request('/v2/health/ready')).status).toBe(200);
    expect(((await (await facet.app.request('/v2')).json()) as Json).extensions).toContain('classification');
    const meta = (await (await facet.app.request('/v2/models/tops')).json()) as Json;
    expect(meta).toMatchObject({ name: 'tops', versions: ['1'], platform: 'onnxruntime_onnx' });
    expect(meta.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 1, 28, 28] }]);
    expect(meta.outputs).toEqual([{ name: 'logits', datatype: 'FP32', shape: [-1, 4] }]);
    expect((await facet.app.request('/v2/models/tops/ready')).status).toBe(200);
    expect((await facet.app.request('/v2/models/tops/versions/1')).status).toBe(200);
    await expectError(await facet.app.request('/v2/models/tops/versions/2'), 404, 'unknown_version');
    await expectError(await facet.app.request('/v2/models/nope'), 404, 'unknown_model');
  });

  it('infers a tensor batch and answers the classification extension', async () => {
    const raw = await decodeImage(image('sneaker.png'), 1e8);
    const x = Array.from(preprocess(raw, facet.manifest.models[2]!.input));
    const req = { id: 'r1', inputs: [{ name: 'input', shape: [2, 1, 28, 28], datatype: 'FP32', data: [...x, ...x] }], outputs: [{ name: 'logits', parameters: { classification: 2 } }] };
    const res = await post('/v2/models/shoes/infer', JSON.stringify(req), 'application/json');
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body).toMatchObject({ model_name: 'shoes', model_version: '1', id: 'r1' });
    expect(body.outputs[0]).toMatchObject({ name: 'logits', datatype: 'BYTES', shape: [2, 2] });
    const logits = await logitsOf('shoes', 'sneaker.png');
    const order = [0, 1, 2].sort((a, b) => logits[b]! - logits[a]!);
    const labels = ['Sandal', 'Sneaker', 'Ankle boot'];
    body.outputs[0].data.forEach((s: string, i: number) => {
      const [score, index, label] = s.split(':');
      expect(Number(index)).toBe(order[i % 2]);
      expect(label).toBe(labels[order[i % 2]!]);
      expect(Number(score)).toBeCloseTo(logits[order[i % 2]!]!, 4);
    });
    await expectError(await post('/v2/models/shoes/infer', JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 27], datatype: 'FP32', data: [] }] }), 'application/json'), 400, 'bad_request', /shape/);
    await expectError(await post('/v2/models/shoes/infer', JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: [1, 2] }] }), 'application/json'), 400, 'bad_request', /784/);
    await expectError(await post('/v2/models/shoes/infer', '{', 'application/json'), 400, 'bad_request');
  });
});

describe('integrity and startup', () => {
  async function storeWith(mutate: (files: Map<string, Uint8Array>, manifest: Json) => void) {
    const manifest = JSON.parse(readFileSync(`${FIXTURE_MODELS}/manifest.json`, 'utf8'));
    const files = new Map(manifest.models.map((m: Json) => [m.file, new Uint8Array(readFileSync(`${FIXTURE_MODELS}/${m.file}`))])) as Map<string, Uint8Array>;
    mutate(files, manifest);
    return new MemoryModelStore(manifest, files);
  }

  it('refuses a model whose sha256 does not match: 503 for it, the others keep serving', async () => {
    const store = await storeWith((files) => {
      const tops = files.get('tops.onnx')!.slice();
      tops[tops.length - 5] = tops[tops.length - 5]! ^ 1;
      files.set('tops.onnx', tops);
    });
    const bad = await createApp({ store, wasm: await fixtureWasm() });
    const req = (q: string) => bad.app.request(`/v1/classify${q}`, { method: 'POST', body: image('shirt.png'), headers: { 'content-type': 'image/png' } });
    await expectError(await req('?subtask=tops'), 503, 'model_unavailable', /tops\.onnx has sha256 [0-9a-f]{64}; the manifest says/);
    await expectError(await req('?classes=Shirt,Coat'), 503, 'model_unavailable');
    expect((await req('?subtask=shoes')).status).toBe(200);
    expect((await req('')).status).toBe(200);
    const ready = await bad.app.request('/readyz');
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as Json).models.find((m: Json) => m.id === 'tops').state).toBe('failed');
    await expectError(await bad.app.request('/v2/models/tops/ready'), 503, 'model_unavailable');
  });

  it('refuses a truncated model file by size', async () => {
    const store = await storeWith((files) => files.set('shoes.onnx', files.get('shoes.onnx')!.slice(0, 100)));
    const bad = await createApp({ store, wasm: await fixtureWasm() });
    const res = await bad.app.request('/v1/classify?subtask=shoes', { method: 'POST', body: image('boot.png'), headers: { 'content-type': 'image/png' } });
    await expectError(res, 503, 'model_unavailable', /100 bytes; the manifest says/);
  });

  it('stops startup on a manifest that fails validation, naming the problem', async () => {
    const store = await storeWith((_, manifest) => {
      manifest.models[1].sha256 = 'XYZ';
      delete manifest.labels;
    });
    await expect(createApp({ store, wasm: await fixtureWasm() })).rejects.toThrow(/memory\/manifest\.json is not a valid Facet manifest:[\s\S]*labels[\s\S]*models\.1\.sha256: must be 64 lowercase hex digits/);
  });
});
