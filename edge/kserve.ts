/**
 * Open Inference Protocol (KServe v2) routes, so Triton/KServe clients work unchanged, with
 * Triton's classification extension: an output that asks for `parameters.classification = k`
 * gets a BYTES tensor [batch, k] of "score:index:label" strings (score = the model's output
 * value, as Triton does). Every model has one version, "1".
 */
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { z } from 'zod';
import type { ModelEntry } from '../shared/manifest.ts';
import { ClientError } from './decode.ts';
import type { ModelPool } from './engine.ts';
import type { Env } from './env.ts';
import type { Limits } from './limits.ts';

const VERSION = '1';

const InferRequest = z.object({
  id: z.string().optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  inputs: z
    .array(
      z.object({
        name: z.string(),
        shape: z.array(z.number().int().nonnegative()),
        datatype: z.string(),
        parameters: z.record(z.string(), z.unknown()).optional(),
        data: z.array(z.unknown()),
      }),
    )
    .length(1, 'exactly one input tensor'),
  outputs: z
    .array(z.object({ name: z.string(), parameters: z.record(z.string(), z.unknown()).optional() }))
    .optional(),
});

function flatNumbers(data: unknown[], what: string): Float32Array {
  const flat = (data as unknown[]).flat(4);
  const out = new Float32Array(flat.length);
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ClientError(400, 'bad_request', `${what}.data[${i}] is not a finite number`);
    out[i] = v;
  }
  return out;
}

export function kserveRoutes(app: Hono<Env>, ctx: { pool: ModelPool; limits: Limits; limitBody: MiddlewareHandler }): void {
  const { pool, limits } = ctx;
  /** The models of the set the request answers from. */
  const modelsOf = (c: Context<Env>) => c.get('modelSet').manifest.models;
  const find = (c: Context<Env>, name: string, version?: string): ModelEntry => {
    const models = modelsOf(c);
    const entry = models.find((m) => m.id === name);
    if (!entry) throw new ClientError(404, 'unknown_model', `no model "${name}"; models: ${models.map((m) => m.id).join(', ')}`);
    if (version !== undefined && version !== VERSION) throw new ClientError(404, 'unknown_version', `model "${name}" has only version ${VERSION}`);
    return entry;
  };
  const metadata = (e: ModelEntry) => ({
    name: e.id,
    versions: [VERSION],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: e.input.name, datatype: 'FP32', shape: [-1, e.input.channels, e.input.height, e.input.width] }],
    outputs: [{ name: e.output, datatype: 'FP32', shape: [-1, e.classes.length] }],
    parameters: { subtask: e.subtask, classes: e.classes, macs: e.macs, params: e.params, mean: e.input.mean, std: e.input.std },
  });

  app.get('/v2', (c) => c.json({ name: 'facet', version: '0.1.0', extensions: ['classification', 'model_repository_index'] }));
  app.get('/v2/health/live', (c) => c.json({ live: true }));
  app.get('/v2/health/ready', async (c) => {
    const results = await Promise.allSettled(modelsOf(c).map((m) => pool.session(m)));
    const ready = results.every((r) => r.status === 'fulfilled');
    return c.json({ ready }, ready ? 200 : 503);
  });
  app.get('/v2/models', (c) => c.json({ models: modelsOf(c).map((m) => ({ name: m.id, versions: [VERSION] })) }));
  app.get('/v2/models/:name', (c) => c.json(metadata(find(c, c.req.param('name')))));
  app.get('/v2/models/:name/versions/:version', (c) => c.json(metadata(find(c, c.req.param('name'), c.req.param('version')))));
  const ready = async (c: Context<Env>, version?: string) => {
    const entry = find(c, c.req.param('name')!, version);
    await pool.session(entry); // 503 if it cannot load
    return { name: entry.id, ready: true };
  };
  app.get('/v2/models/:name/ready', async (c) => c.json(await ready(c)));
  app.get('/v2/models/:name/versions/:version/ready', async (c) => c.json(await ready(c, c.req.param('version'))));

  const infer = async (c: Context<Env>, version: string | undefined, body: unknown) => {
    const entry = find(c, c.req.param('name')!, version);
    const parsed = InferRequest.safeParse(body);
    if (!parsed.success) {
      throw new ClientError(400, 'bad_request', `invalid inference request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
    }
    const req = parsed.data;
    const input = req.inputs[0]!;
    const { channels, height, width } = entry.input;
    if (input.name !== entry.input.name) throw new ClientError(400, 'bad_request', `input is named "${input.name}"; model "${entry.id}" expects "${entry.input.name}"`);
    if (input.datatype !== 'FP32') throw new ClientError(400, 'bad_request', `input datatype ${input.datatype} is not supported; send FP32`);
    const [n, ...rest] = input.shape;
    if (input.shape.length !== 4 || rest[0] !== channels || rest[1] !== height || rest[2] !== width || !n) {
      throw new ClientError(400, 'bad_request', `input shape [${input.shape}] must be [N, ${channels}, ${height}, ${width}] with N ≥ 1`);
    }
    if (n > limits.maxBatch) throw new ClientError(413, 'batch_too_large', `batch ${n} is over the limit of ${limits.maxBatch}`);
    const data = flatNumbers(input.data, 'inputs[0]');
    if (data.length !== n * channels * height * width) throw new ClientError(400, 'bad_request', `input has ${data.length} values; shape [${input.shape}] needs ${n * channels * height * width}`);
    const rows: Float32Array[] = [];
    const per = channels * height * width;
    for (let s = 0; s < n; s += limits.maxRunBatch) {
      const m = Math.min(limits.maxRunBatch, n - s);
      rows.push(...(await pool.run(entry, data.subarray(s * per, (s + m) * per), m)));
    }
    const k = entry.classes.length;
    const requested = req.outputs ?? [{ name: entry.output }];
    const outputs = requested.map((o) => {
      if (o.name !== entry.output) throw new ClientError(400, 'bad_request', `unknown output "${o.name}"; model "${entry.id}" has "${entry.output}"`);
      const cls = o.parameters?.classification;
      if (cls === undefined) return { name: entry.output, datatype: 'FP32', shape: [n, k], data: rows.flatMap((r) => Array.from(r)) };
      if (typeof cls !== 'number' || !Number.isInteger(cls) || cls < 1) throw new ClientError(400, 'bad_request', 'parameters.classification must be a positive integer');
      const top = Math.min(cls, k);
      const data = rows.flatMap((r) =>
        Array.from(r, (score, j) => ({ score, j }))
          .sort((a, b) => b.score - a.score || a.j - b.j)
          .slice(0, top)
          .map(({ score, j }) => `${score}:${j}:${entry.classes[j]!.label}`),
      );
      return { name: entry.output, datatype: 'BYTES', shape: [n, top], data };
    });
    return { model_name: entry.id, model_version: VERSION, ...(req.id !== undefined ? { id: req.id } : {}), outputs };
  };
  const readJson = async (c: { req: { json(): Promise<unknown>; header(n: string): string | undefined } }) => {
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') throw new ClientError(415, 'unsupported_media_type', 'send the inference request as application/json');
    try {
      return await c.req.json();
    } catch (err) {
      throw new ClientError(400, 'bad_request', `malformed JSON body: ${(err as Error).message}`);
    }
  };
  app.post('/v2/models/:name/infer', ctx.limitBody, async (c) => c.json(await infer(c, undefined, await readJson(c))));
  app.post('/v2/models/:name/versions/:version/infer', ctx.limitBody, async (c) => c.json(await infer(c, c.req.param('version'), await readJson(c))));
}
