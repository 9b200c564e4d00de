/**
 * The edge service as one runtime-agnostic Hono app. Entries (worker.ts, node.ts, bun.ts,
 * deno.ts) only pick a model store and hand over the precompiled wasm modules; Node, Bun and
 * Deno also start the models folder watch (edge/watch-models.ts) that switches the set served.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { secureHeaders } from 'hono/secure-headers';
import type { Manifest, ModelEntry } from '../shared/manifest.ts';
import type { RawImage } from '../shared/image.ts';
import { preprocess } from '../shared/preprocess.ts';
import { chooseModel, classifyResponse, parseTopK, type ClassifyParams, type ModelChoice } from './classify.ts';
import { ClientError, decodeImage, initCodecs, type CodecModules } from './decode.ts';
import { ModelPool } from './engine.ts';
import { Metrics } from './metrics.ts';
import { configureOrt } from './ort.ts';
import { openApiDocument } from './openapi.ts';
import { demoHtml, demoScript } from './demo/page.ts';
import type { ModelStore } from './store.ts';
import { kserveRoutes } from './kserve.ts';
import { loadModelSet, manifestSummary, ServedModels, type ReloadLog } from './served-models.ts';
import type { Env } from './env.ts';
import { DEFAULT_LIMITS, type Limits } from './limits.ts';

export { DEFAULT_LIMITS, type Limits } from './limits.ts';

export interface AppOptions {
  store: ModelStore;
  /** Precompiled wasm: onnxruntime-web and the PNG/JPEG codecs. */
  wasm: { ort: WebAssembly.Module; codecs: CodecModules };
  /** When set, /v1/* and /v2/models/* need `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Allowed CORS origins; CORS is off when absent. */
  cors?: string[] | '*';
  limits?: Partial<Limits>;
  /** Wasm heap bytes the cached sessions may use together (default 96 MiB, inside a Worker's 128 MB). */
  memoryBudgetBytes?: number;
  /** Serve /metrics (off on Workers, where per-isolate counters mean little). */
  metrics?: boolean;
  /** Where model set switches and refusals are logged (default: the console). */
  reloadLog?: ReloadLog;
}

export interface FacetApp {
  app: Hono<Env>;
  /** The manifest served now. */
  readonly manifest: Manifest;
  pool: ModelPool;
  /** The set served, and `check()` to switch to the store's manifest when it changed. */
  models: ServedModels;
}

/** The header values a secure-headers middleware sets, read off one answer it made. */
async function secureHeaderValues(middleware: MiddlewareHandler): Promise<Record<string, string>> {
  const probe = new Hono();
  probe.use('*', middleware);
  probe.get('/', (c) => c.body(null, 204));
  const res = await probe.request('/');
  const values: Record<string, string> = {};
  res.headers.forEach((value, name) => (values[name] = value));
  return values;
}

export function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

/** Compare two secrets in time independent of where they differ (digests have equal length). */
async function sameSecret(a: string, b: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [x, y] = await Promise.all([a, b].map(async (s) => new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(s)))));
  let diff = 0;
  for (let i = 0; i < x!.length; i++) diff |= x![i]! ^ y![i]!;
  return diff === 0;
}

function requireApiKey(apiKey: string): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !(await sameSecret(match[1]!.trim(), apiKey))) {
      c.header('WWW-Authenticate', 'Bearer');
      return c.json(errorBody('unauthorized', match ? 'the API key is wrong' : 'this route needs an API key: Authorization: Bearer <key>'), 401);
    }
    await next();
  };
}

function decodeBase64(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string' || value.length === 0) throw new ClientError(400, 'bad_request', `${what} must be a non-empty base64 string or data URL`);
  const comma = value.startsWith('data:') ? value.indexOf(',') : -1;
  if (value.startsWith('data:') && (comma < 0 || !value.slice(0, comma).endsWith(';base64'))) {
    throw new ClientError(400, 'bad_request', `${what} is a data URL without ";base64,"`);
  }
  const b64 = (comma >= 0 ? value.slice(comma + 1) : value).replace(/\s+/g, '').replace(/-/g, '+').replace(/_/g, '/');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) throw new ClientError(400, 'bad_request', `${what} is not valid base64`);
  let binary: string;
  try {
    binary = atob(b64);
  } catch {
    throw new ClientError(400, 'bad_request', `${what} is not valid base64`);
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

interface ParsedClassify {
  images: Uint8Array[];
  params: ClassifyParams;
  /** A batch answers with `results`, a single image with `predictions`. */
  batch: boolean;
}

const pickString = (v: unknown) => (typeof v === 'string' ? v : undefined);

async function parseClassifyRequest(c: Context<Env>, limits: Limits): Promise<ParsedClassify> {
  const query = c.req.query();
  const params: ClassifyParams = { classes: query.classes, subtask: query.subtask, model: query.model, top_k: query.top_k };
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  const tooMany = (n: number) => new ClientError(413, 'batch_too_large', `${n} images in one request; the limit is ${limits.maxBatch}`);
  if (type === 'image/png' || type === 'image/jpeg' || type === 'image/jpg') {
    return { images: [new Uint8Array(await c.req.arrayBuffer())], params, batch: false };
  }
  if (type === 'multipart/form-data') {
    let form: FormData;
    try {
      form = await c.req.formData();
    } catch (err) {
      throw new ClientError(400, 'bad_request', `malformed multipart/form-data body: ${(err as Error).message}`);
    }
    const files = form.getAll('image');
    if (files.length === 0) throw new ClientError(400, 'bad_request', 'multipart body has no "image" field');
    if (files.length > limits.maxBatch) throw tooMany(files.length);
    const images = await Promise.all(
      files.map(async (f, i) => {
        if (typeof f === 'string') throw new ClientError(400, 'bad_request', `multipart field "image" #${i + 1} is text, not a file`);
        return new Uint8Array(await f.arrayBuffer());
      }),
    );
    for (const key of ['classes', 'subtask', 'model', 'top_k'] as const) {
      const v = pickString(form.get(key));
      if (v !== undefined) params[key] = v;
    }
    return { images, params, batch: true };
  }
  if (type === 'application/json') {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch (err) {
      throw new ClientError(400, 'bad_request', `malformed JSON body: ${(err as Error).message}`);
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ClientError(400, 'bad_request', 'JSON body must be an object with "image" or "images"');
    const o = body as Record<string, unknown>;
    let images: Uint8Array[];
    let batch: boolean;
    if (o.images !== undefined) {
      if (!Array.isArray(o.images) || o.images.length === 0) throw new ClientError(400, 'bad_request', '"images" must be a non-empty array of base64 strings');
      if (o.images.length > limits.maxBatch) throw tooMany(o.images.length);
      images = o.images.map((v, i) => decodeBase64(v, `images[${i}]`));
      batch = true;
    } else if (o.image !== undefined) {
      images = [decodeBase64(o.image, 'image')];
      batch = false;
    } else {
      throw new ClientError(400, 'bad_request', 'JSON body needs "image" (base64 or data URL) or "images" (a list of them)');
    }
    if (o.classes !== undefined) {
      const ok = typeof o.classes === 'string' || (Array.isArray(o.classes) && o.classes.every((x) => typeof x === 'string' || typeof x === 'number'));
      if (!ok) throw new ClientError(422, 'invalid_parameter', '"classes" must be a string or a list of labels/indices');
      params.classes = o.classes as ClassifyParams['classes'];
    }
    for (const key of ['subtask', 'model'] as const) {
      if (o[key] === undefined) continue;
      if (typeof o[key] !== 'string') throw new ClientError(422, 'invalid_parameter', `"${key}" must be a string`);
      params[key] = o[key] as string;
    }
    if (o.top_k !== undefined) {
      if (typeof o.top_k !== 'number' && typeof o.top_k !== 'string') throw new ClientError(422, 'invalid_parameter', '"top_k" must be an integer');
      params.top_k = o.top_k;
    }
    return { images, params, batch };
  }
  throw new ClientError(
    415,
    'unsupported_media_type',
    `${type ? `Content-Type ${type} is not supported` : 'Content-Type is missing'}; send image/png, image/jpeg, multipart/form-data (fields "image") or application/json`,
  );
}

/** Decode, preprocess and run a batch of images through one model, in runs of at most maxRunBatch. */
export async function inferImages(pool: ModelPool, entry: ModelEntry, images: RawImage[], maxRunBatch: number): Promise<Float32Array[]> {
  const { channels, height, width } = entry.input;
  const per = channels * height * width;
  const rows: Float32Array[] = [];
  for (let start = 0; start < images.length; start += maxRunBatch) {
    const chunk = images.slice(start, start + maxRunBatch);
    const input = new Float32Array(chunk.length * per);
    chunk.forEach((img, i) => input.set(preprocess(img, entry.input), i * per));
    rows.push(...(await pool.run(entry, input, chunk.length)));
  }
  return rows;
}

export function modelSummary(entry: ModelEntry) {
  return { id: entry.id, subtask: entry.subtask, classes: entry.classes, macs: entry.macs, params: entry.params };
}

/** Build the app: reads and validates the manifest (throws with a clear message if invalid). */
export async function createApp(options: AppOptions): Promise<FacetApp> {
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const initial = await loadModelSet(options.store);
  const ort = configureOrt(options.wasm.ort);
  await initCodecs(options.wasm.codecs);
  const pool = new ModelPool(ort, options.store, initial.manifest, options.memoryBudgetBytes);
  const models = new ServedModels(options.store, pool, initial, options.reloadLog);
  const metrics = new Metrics();
  const app = new Hono<Env>();

  app.use('*', async (c, next) => {
    const started = performance.now();
    c.set('started', started);
    const set = models.acquire();
    c.set('modelSet', set);
    metrics.inFlight++;
    try {
      await next();
    } finally {
      models.release(set);
      metrics.inFlight--;
      metrics.observe(c.req.method, c.req.routePath || c.req.path, c.res.status, (performance.now() - started) / 1000);
    }
  });
  // Secure headers on every answer. Hono's middleware sets them on the finished response, which
  // makes @hono/node-server build a Headers object per request and take its slow path (~5% of
  // the Node server's CPU per classify request, by --cpu-prof). So the values are worked out once,
  // by Hono's own middleware, and the hot JSON answers carry them from the start (`json` below);
  // any other response gets them set afterwards as before.
  const secure = await secureHeaderValues(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'blob:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        frameAncestors: ["'none'"],
      },
      crossOriginResourcePolicy: 'same-origin',
    }),
  );
  const jsonHeaders = { 'content-type': 'application/json', ...secure };
  /**
   * A JSON answer that already carries the secure headers (a plain object: node-server's fast
   * path). It is remembered on the request's context, not on the Response: in workerd, a
   * WeakSet of Responses (as before) or a property on one makes workerd's native memory grow
   * faster under load (bench/load-probe.ts, GET /v1/models under `workerd serve` with V8 heap
   * flags, from 12k to 60k requests: 3.9 MiB per 1,000 requests with the WeakSet, 1.4 with the
   * context; 11 with a symbol property on the Response, over 6k to 30k).
   */
  const json = (c: Context<Env>, body: unknown, status: ContentfulStatusCode = 200): Response => {
    const res = new Response(JSON.stringify(body), { status, headers: jsonHeaders });
    c.set('secured', res);
    return res;
  };
  app.use('*', async (c, next) => {
    await next();
    if (c.res === c.get('secured')) return;
    for (const [name, value] of Object.entries(secure)) c.res.headers.set(name, value);
  });
  if (options.cors) app.use('*', cors({ origin: options.cors === '*' ? '*' : options.cors, allowHeaders: ['Authorization', 'Content-Type'], allowMethods: ['GET', 'POST', 'OPTIONS'] }));
  if (options.apiKey) {
    const auth = requireApiKey(options.apiKey);
    app.use('/v1/*', auth);
    app.use('/v2/models/*', auth);
    app.use('/admin/*', auth);
  }
  const tooLarge = (c: Context<Env>) => json(c, errorBody('payload_too_large', `request body is over the limit of ${limits.maxBodyBytes} bytes`), 413);
  const streamLimit = bodyLimit({ maxSize: limits.maxBodyBytes, onError: tooLarge });
  // A plain Content-Length (no Transfer-Encoding) is decided from the header, as bodyLimit does,
  // but without touching `request.body` first (bodyLimit's opening check): on the Node server
  // that materialises the body stream, and the server's RSS grew 7–44% over 50k-request load
  // runs (bench/load.ts), growing still at the end; without it, it stayed flat (−1%).
  // Everything else (chunked, no or odd Content-Length) goes through bodyLimit.
  const limitBody: MiddlewareHandler = async (c, next) => {
    const length = c.req.header('content-length');
    if (length !== undefined && /^\d+$/.test(length) && !c.req.header('transfer-encoding')) {
      return Number(length) > limits.maxBodyBytes ? tooLarge(c) : next();
    }
    return streamLimit(c, next);
  };

  app.onError((err, c) => {
    if (err instanceof ClientError) return json(c, errorBody(err.code, err.message), err.status);
    console.error(`facet edge: ${c.req.method} ${c.req.path} failed:`, err);
    return c.json(errorBody('internal', 'internal error; see the server log'), 500);
  });
  app.notFound((c) => c.json(errorBody('not_found', `no route ${c.req.method} ${c.req.path}; see /openapi.json`), 404));

  app.get('/', (c) => c.html(demoHtml()));
  app.get('/demo.js', (c) => c.body(demoScript(), 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' }));
  app.get('/healthz', (c) => json(c, { status: 'ok' }));
  app.get('/readyz', async (c) => {
    const set = c.get('modelSet');
    const results = await Promise.allSettled(set.manifest.models.map((m) => pool.session(m)));
    const ready = results.every((r) => r.status === 'fulfilled');
    return c.json({ ready, manifest: manifestSummary(set), models: pool.states(set.manifest) }, ready ? 200 : 503);
  });
  app.get('/metrics', (c) => {
    if (options.metrics === false) throw new ClientError(404, 'not_found', '/metrics is off on this runtime');
    return c.body(metrics.render(pool), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
  });
  app.get('/openapi.json', (c) => c.json(openApiDocument(limits)));

  app.get('/v1/models', (c) => {
    const set = c.get('modelSet');
    const { manifest } = set;
    const states = new Map(pool.states(manifest).map((s) => [s.id, s]));
    return json(c, {
      dataset: manifest.dataset,
      labels: manifest.labels,
      manifest: manifestSummary(set),
      models: manifest.models.map((m) => ({
        ...modelSummary(m),
        input: m.input,
        accuracy: m.accuracy,
        latencyMs: m.latencyMs,
        bytes: m.bytes,
        state: states.get(m.id)?.state,
      })),
    });
  });

  app.post('/v1/classify', limitBody, async (c) => {
    const started = c.get('started');
    const request = await parseClassifyRequest(c, limits);
    const choice: ModelChoice = chooseModel(c.get('modelSet').manifest, request.params);
    const topK = parseTopK(request.params.top_k);
    const decodeStart = performance.now();
    const images = await Promise.all(request.images.map((bytes, i) => decodeImage(bytes, limits.maxPixels, request.batch ? `image #${i + 1}` : 'image')));
    const inferStart = performance.now();
    const logits = await inferImages(pool, choice.entry, images, limits.maxRunBatch);
    const done = performance.now();
    const timing = { decode_ms: inferStart - decodeStart, infer_ms: done - inferStart, total_ms: done - started };
    return json(c, classifyResponse(choice, logits, topK, request.batch, timing));
  });

  // A forced check, for hosts where the folder watch does not work (network file systems, some
  // containers) and for deploy scripts that want to know the new set is served before going on.
  app.post('/admin/reload', async (c) => {
    const result = await models.check();
    if (result.status === 'refused') {
      return json(c, { ...errorBody('reload_refused', result.error), manifest: manifestSummary(result.set) }, 422);
    }
    return json(c, { status: result.status, manifest: manifestSummary(result.set), models: result.set.manifest.models.map((m) => m.id) });
  });

  kserveRoutes(app, { pool, limits, limitBody });
  return {
    app,
    pool,
    models,
    get manifest() {
      return models.current.manifest;
    },
  };
}
