/**
 * Does int8 close the onnxruntime-web / onnxruntime-node gap (issue 5 names it as a way)?
 * For every shipped model: a static int8 copy in QDQ form (weights int8 symmetric per output
 * channel, activations uint8 asymmetric per tensor, ranges from the compile's validation
 * split, clean and degraded, never test images), then side by side in one run:
 * batch-1 time in onnxruntime-web (wasm, 1 thread) and onnxruntime-node (1 thread) for
 * float32 and int8, and the test accuracy (clean and the four degradations) of both in
 * onnxruntime-node. onnxruntime fuses the QDQ pairs into QLinearConv / QLinearAdd /
 * QLinearAveragePool / QGemm at graph optimisation level `extended` and above.
 *
 *   npm run bench:edge-int8 [-- --models DIR] [--config configs/fashion-mnist.json] [--quick] [--out bench/results/edge-int8.json]
 *
 * An experiment, not a product path: the compiler ships float32 models.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ortNode from 'onnxruntime-node';
import { subsetClasses } from '../compiler/data/split.ts';
import { onnxModelType } from '../compiler/onnx/export.ts';
import type { LabelledImages } from '../compiler/data/types.ts';
import { formatPoints } from '../compiler/pipeline/accuracy.ts';
import { writeFileAtomic } from '../compiler/pipeline/cache.ts';
import { loadCompileConfig } from '../compiler/pipeline/config.ts';
import { evaluate, onnxClassifier } from '../compiler/pipeline/evaluate.ts';
import { loadCompileData } from '../compiler/pipeline/stages.ts';
import { trainingSplits } from '../compiler/pipeline/training-data.ts';
import { selectionSet } from '../compiler/pipeline/subtask.ts';
import { DEFAULT_MODELS } from '../edge/node.ts';
import { configureOrt } from '../edge/ort.ts';
import { loadManifest } from '../edge/store.ts';
import { FsModelStore } from '../edge/store-fs.ts';
import { compileWasmFromNodeModules } from '../edge/wasm-files.ts';
import { DEGRADATION_KINDS } from '../shared/manifest.ts';
import { batchToNCHW } from '../shared/preprocess.ts';
import { optionValue } from './args.ts';
import { interleavedMedians } from './stats.ts';

const argv = process.argv.slice(2);
const arg = (name: string) => optionValue(argv, name);
const quick = argv.includes('--quick');
const modelsDir = arg('models') ?? DEFAULT_MODELS.find((d) => existsSync(`${d}/manifest.json`))!;
const configFile = arg('config') ?? 'configs/fashion-mnist.json';
const outPath = arg('out') ?? 'bench/results/edge-int8.json';
const CALIBRATION_IMAGES = 500;
const FLOAT = 1, UINT8 = 2, INT8 = 3, INT32 = 6;

// The fields of onnx.proto this script reads and writes (names as in the .proto: keepCase).
interface TensorProto { name: string; dims: number[]; data_type: number; raw_data: Uint8Array }
interface NodeProto { op_type: string; name?: string; input: string[]; output: string[]; attribute?: unknown[] }
interface ValueInfo { name: string; type?: unknown }
interface ModelProto { graph: { node: NodeProto[]; initializer: TensorProto[]; input: ValueInfo[]; output: ValueInfo[] } }

const modelType = onnxModelType();
const decode = (bytes: Uint8Array) => modelType.toObject(modelType.decode(bytes), { longs: Number }) as ModelProto;
const encode = (m: ModelProto) => modelType.encode(modelType.fromObject(m)).finish();
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const floatsOf = (t: TensorProto) => new Float32Array(t.raw_data.slice().buffer);

/** Activation ranges: the model with every node output as a graph output, run on calibration inputs. */
async function activationRanges(bytes: Uint8Array, inputs: Float32Array, n: number, chw: [number, number, number]) {
  const m = decode(bytes);
  const outputs = new Set(m.graph.output.map((o) => o.name));
  for (const node of m.graph.node) for (const o of node.output) if (!outputs.has(o)) m.graph.output.push({ name: o, type: { tensor_type: { elem_type: FLOAT } } });
  const session = await ortNode.InferenceSession.create(encode(m), { intraOpNumThreads: 1 });
  const ranges = new Map<string, { min: number; max: number }>();
  const see = (name: string, data: Float32Array) => {
    const r = ranges.get(name) ?? { min: 0, max: 0 }; // 0 stays representable: zero padding, ReLU
    for (const v of data) {
      if (v < r.min) r.min = v;
      if (v > r.max) r.max = v;
    }
    ranges.set(name, r);
  };
  const per = chw[0] * chw[1] * chw[2];
  for (let i = 0; i < n; i += 100) {
    const b = Math.min(100, n - i);
    const x = inputs.subarray(i * per, (i + b) * per);
    see(m.graph.input[0]!.name, x);
    const out = await session.run({ [m.graph.input[0]!.name]: new ortNode.Tensor('float32', x, [b, ...chw]) });
    for (const [name, t] of Object.entries(out)) see(name, t.data as Float32Array);
  }
  await session.release();
  return ranges;
}

/**
 * The QDQ int8 copy: a QuantizeLinear/DequantizeLinear pair after the input and after every
 * node output except the logits and tensors whose only reader is a Relu (so Conv → Relu → Q
 * folds the Relu into the quantized range, as onnxruntime expects); Conv and Gemm weights
 * int8 per output channel, biases int32 at input scale × weight scale.
 */
function quantizeQdq(bytes: Uint8Array, ranges: Map<string, { min: number; max: number }>): Uint8Array {
  const m = decode(bytes);
  const g = m.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const readers = new Map<string, NodeProto[]>();
  for (const n of g.node) for (const i of n.input) readers.set(i, [...(readers.get(i) ?? []), n]);
  const nodes: NodeProto[] = [];
  const added: TensorProto[] = [];
  const actParams = (name: string) => {
    const r = ranges.get(name);
    if (!r) throw new Error(`quantize: no calibration range for tensor "${name}"`);
    const scale = Math.max(r.max - r.min, 1e-8) / 255;
    return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-r.min / scale))) };
  };
  const renamed = new Map<string, string>();
  const qdq = (name: string) => {
    const { scale, zeroPoint } = actParams(name);
    added.push({ name: `${name}.q_scale`, dims: [], data_type: FLOAT, raw_data: bytesOf(new Float32Array([scale])) });
    added.push({ name: `${name}.q_zero`, dims: [], data_type: UINT8, raw_data: new Uint8Array([zeroPoint]) });
    const args = (x: string) => [x, `${name}.q_scale`, `${name}.q_zero`];
    nodes.push({ op_type: 'QuantizeLinear', name: `${name}.Q`, input: args(name), output: [`${name}.q`] });
    nodes.push({ op_type: 'DequantizeLinear', name: `${name}.DQ`, input: args(`${name}.q`), output: [`${name}.dq`] });
    renamed.set(name, `${name}.dq`);
  };
  const dequantized = (t: TensorProto, type: number, data: Int8Array | Int32Array, scales: Float32Array, axis: number | undefined) => {
    const perAxis = axis !== undefined;
    added.push({ name: `${t.name}.q`, dims: t.dims, data_type: type, raw_data: bytesOf(data) });
    added.push({ name: `${t.name}.scale`, dims: perAxis ? [scales.length] : [], data_type: FLOAT, raw_data: bytesOf(scales) });
    added.push({ name: `${t.name}.zero`, dims: perAxis ? [scales.length] : [], data_type: type, raw_data: bytesOf(type === INT8 ? new Int8Array(scales.length) : new Int32Array(scales.length)) });
    nodes.push({
      op_type: 'DequantizeLinear', name: `${t.name}.DQ`, input: [`${t.name}.q`, `${t.name}.scale`, `${t.name}.zero`], output: [`${t.name}.dq`],
      attribute: perAxis ? [{ name: 'axis', type: 2, i: axis }] : [],
    });
    inits.delete(t.name);
    return `${t.name}.dq`;
  };
  const logits = g.output[0]!.name;
  qdq(g.input[0]!.name);
  for (const node of g.node) {
    const input = node.input.map((i) => renamed.get(i) ?? i);
    if (node.op_type === 'Conv' || node.op_type === 'Gemm') {
      const w = inits.get(node.input[1]!)!;
      const wf = floatsOf(w);
      // Conv W is [O, I, kh, kw]: one scale per O. Gemm's B ([K, N], transB = 0) gets one scale.
      const channels = node.op_type === 'Conv' ? w.dims[0]! : 1;
      const per = wf.length / channels;
      const scales = new Float32Array(channels);
      const q = new Int8Array(wf.length);
      for (let o = 0; o < channels; o++) {
        let maxAbs = 1e-12;
        for (let j = 0; j < per; j++) maxAbs = Math.max(maxAbs, Math.abs(wf[o * per + j]!));
        scales[o] = maxAbs / 127;
        for (let j = 0; j < per; j++) q[o * per + j] = Math.round(wf[o * per + j]! / scales[o]!);
      }
      input[1] = dequantized(w, INT8, q, scales, channels > 1 ? 0 : undefined);
      const b = node.input[2] ? inits.get(node.input[2]) : undefined;
      if (b) {
        const bf = floatsOf(b);
        const xScale = actParams(node.input[0]!).scale;
        const bScales = new Float32Array(bf.length).map((_, i) => xScale * scales[channels > 1 ? i : 0]!);
        input[2] = dequantized(b, INT32, new Int32Array(bf.length).map((_, i) => Math.round(bf[i]! / bScales[i]!)), bScales, 0);
      }
    }
    nodes.push({ ...node, input });
    for (const out of node.output) {
      const r = readers.get(out) ?? [];
      if (out !== logits && !(r.length === 1 && r[0]!.op_type === 'Relu')) qdq(out);
    }
  }
  g.node = nodes;
  g.initializer = [...inits.values(), ...added];
  return encode(m);
}

const pct = formatPoints;
const round = (x: number, d = 4) => +x.toFixed(d);

const config = await loadCompileConfig(configFile);
const data = await loadCompileData(config);
const splits = trainingSplits(config, data.train);
if (!splits.val) throw new Error(`${configFile}: calibration needs a validation split (dataset.validation > 0)`);
const manifest = await loadManifest(new FsModelStore(modelsDir));
const ort = configureOrt((await compileWasmFromNodeModules()).ort);
const norm = { mean: config.dataset.mean, std: config.dataset.std };
const runs = quick ? 60 : 300;
const rows = [];
console.log(`edge-int8: ${modelsDir}, calibration ${CALIBRATION_IMAGES} validation images (clean and degraded) per model, ${runs} timed runs each`);
for (const m of manifest.models) {
  const classes = m.classes.map((c) => c.index);
  const { channels: c, height: h, width: w } = m.input;
  // Calibration: validation images of the model's classes, clean and under each degradation, evenly spread.
  const val = await selectionSet(subsetClasses(splits.val, classes), DEGRADATION_KINDS, config.degradations, config.seed);
  const n = Math.min(CALIBRATION_IMAGES, val.count);
  const stride = val.count / n;
  const picked = new Uint8Array(n * h * w * c);
  for (let i = 0; i < n; i++) picked.set(val.images.subarray(Math.floor(i * stride) * h * w * c, (Math.floor(i * stride) + 1) * h * w * c), i * h * w * c);
  const fp32 = new Uint8Array(readFileSync(join(modelsDir, m.file)));
  const int8 = quantizeQdq(fp32, await activationRanges(fp32, batchToNCHW(picked, n, h, w, c, norm), n, [c, h, w]));

  const x = new Float32Array(c * h * w).map((_, i) => Math.sin(i) * 0.5);
  const fns: Record<string, () => Promise<unknown>> = {};
  const sessions: { release(): Promise<void> }[] = [];
  for (const [kind, bytes] of [['fp32', fp32], ['int8', int8]] as const) {
    const web = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    const native = await ortNode.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    sessions.push(web, native);
    fns[`web ${kind}`] = () => web.run({ [m.input.name]: new ort.Tensor('float32', x, [1, c, h, w]) });
    fns[`node ${kind}`] = () => native.run({ [m.input.name]: new ortNode.Tensor('float32', x, [1, c, h, w]) });
  }
  // V8 tiers ORT's kernels up in the background as they run (edge/wasm-files.ts raises the
  // budget); on 2 cores the first model measured would otherwise time part of that.
  for (const fn of Object.values(fns)) for (let i = 0; i < 300; i++) await fn();
  const t = await interleavedMedians(runs, fns);
  for (const s of sessions) await s.release();

  const test: LabelledImages = subsetClasses(data.test, classes);
  const accuracy: Record<string, { clean: number | null; degradedMean: number | null }> = {};
  for (const [kind, bytes] of [['fp32', fp32], ['int8', int8]] as const) {
    const model = await onnxClassifier(bytes);
    try {
      const { summary } = await evaluate(model.classify, test, { ranges: config.degradations, evaluation: config.evaluation, quick, mean: norm.mean, std: norm.std });
      accuracy[kind] = { clean: summary.clean, degradedMean: summary.degradedMean };
    } finally {
      await model.close();
    }
  }
  const row = {
    model: m.id,
    macs: m.macs,
    bytesFp32: fp32.byteLength,
    bytesInt8: int8.byteLength,
    webFp32Ms: round(t['web fp32']!),
    nodeFp32Ms: round(t['node fp32']!),
    webInt8Ms: round(t['web int8']!),
    nodeInt8Ms: round(t['node int8']!),
    ratioFp32: round(t['web fp32']! / t['node fp32']!, 2),
    ratioInt8: round(t['web int8']! / t['node int8']!, 2),
    webInt8OverNodeFp32: round(t['web int8']! / t['node fp32']!, 2),
    accuracy,
  };
  rows.push(row);
  console.log(`${m.id}: web ${row.webFp32Ms} → ${row.webInt8Ms} ms, node ${row.nodeFp32Ms} → ${row.nodeInt8Ms} ms; test clean ${pct(accuracy.fp32!.clean)} → ${pct(accuracy.int8!.clean)}, degraded ${pct(accuracy.fp32!.degradedMean)} → ${pct(accuracy.int8!.degradedMean)}`);
}
console.table(rows.map((r) => ({
  model: r.model,
  'web fp32 / int8 ms': `${r.webFp32Ms} / ${r.webInt8Ms}`,
  'node fp32 / int8 ms': `${r.nodeFp32Ms} / ${r.nodeInt8Ms}`,
  'web/node fp32': r.ratioFp32,
  'web/node int8': r.ratioInt8,
  'web int8 / node fp32': r.webInt8OverNodeFp32,
  'clean fp32 → int8': `${pct(r.accuracy.fp32!.clean)} → ${pct(r.accuracy.int8!.clean)}`,
  'degraded fp32 → int8': `${pct(r.accuracy.fp32!.degradedMean)} → ${pct(r.accuracy.int8!.degradedMean)}`,
})));
await writeFileAtomic(outPath, JSON.stringify({ benchmark: 'edge-int8', createdAt: new Date().toISOString(), modelsDir, config: configFile, quick, calibrationImages: CALIBRATION_IMAGES, rows }, null, 1));
console.log(`wrote ${outPath}`);
