/**
 * Edge benchmark (issue 5): per model, onnxruntime-web (wasm, 1 thread) vs onnxruntime-node
 * (1 thread); wasm heap per model and with all loaded; wasm vs pure-JS image decoding; HTTP
 * throughput and p50/p99 at concurrency 8 on the Node server and wrangler dev (28×28 PNG, the
 * smallest subtask model); cold start per runtime; Worker bundle size. Prints a table and
 * writes bench/results/edge.json. Loopback only.
 *
 *   npm run bench:edge [-- --models DIR] [--requests 5000] [--quick] [--inference-only] [--out bench/results/edge.json]
 */
import { fixedRequests } from './fixed-requests.ts';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { decode as fastPngDecode } from 'fast-png';
import jpegJs from 'jpeg-js';
import * as ortNode from 'onnxruntime-node';
import { decodeImage, initCodecs } from '../edge/decode.ts';
import { ModelPool } from '../edge/engine.ts';
import { onnxModelType } from '../compiler/onnx/export.ts';
import { DEFAULT_MODELS } from '../edge/node.ts';
import { configureOrt, ortHeapBytes } from '../edge/ort.ts';
import { loadManifest } from '../edge/store.ts';
import { FsModelStore } from '../edge/store-fs.ts';
import { compileWasmFromNodeModules } from '../edge/wasm-files.ts';
import { WRANGLER_ENV } from '../edge/wrangler-env.ts';
import { cpuMs, servingPid, startServer, type RuntimeName } from '../test/edge/servers.ts';
import { measureColdStarts, printColdStarts } from './edge-cold.ts';
import { optionValue } from './args.ts';
import { interleavedMedians, machineNoise, median } from './stats.ts';

const argv = process.argv.slice(2);
const arg = (name: string) => optionValue(argv, name);
const quick = argv.includes('--quick');
const modelsDir = arg('models') ?? DEFAULT_MODELS.find((d) => existsSync(`${d}/manifest.json`))!;
const requests = Number(arg('requests') ?? (quick ? 1000 : 5000));
const IMAGES = 'test/fixtures/edge/images';
const outPath = arg('out') ?? 'bench/results/edge.json';
const MiB = 2 ** 20;

async function timeMedian(runs: number, fn: () => unknown): Promise<number> {
  for (let i = 0; i < Math.max(3, runs / 10); i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}
const round = (x: number, d = 3) => +x.toFixed(d);


/**
 * A model that does next to nothing (Flatten of the 1×28×28 input): its run time is the fixed
 * cost of a run in each runtime (feeding the input, dispatch, fetching the output), which the
 * real models' times are split by.
 */
function trivialModel(): Uint8Array {
  const type = onnxModelType();
  const tensor = (name: string, dims: (number | string)[]) => ({
    name,
    type: { tensor_type: { elem_type: 1, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) } } },
  });
  const model = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    producer_name: 'facet-bench',
    graph: {
      name: 'trivial',
      node: [{ op_type: 'Flatten', name: 'flatten', input: ['input'], output: ['logits'], attribute: [{ name: 'axis', type: 2, i: 1 }] }],
      input: [tensor('input', ['N', 1, 28, 28])],
      output: [tensor('logits', ['N', 784])],
    },
  };
  return type.encode(type.fromObject(model)).finish();
}

async function fixedCost(ort: ReturnType<typeof configureOrt>, runs: number) {
  const bytes = trivialModel();
  const web = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const native = await ortNode.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const x = new Float32Array(784).map((_, i) => Math.sin(i));
  const t = await interleavedMedians(runs, {
    web: () => web.run({ input: new ort.Tensor('float32', x, [1, 1, 28, 28]) }),
    node: () => native.run({ input: new ortNode.Tensor('float32', x, [1, 1, 28, 28]) }),
  });
  await web.release();
  await native.release();
  return { webMs: t.web!, nodeMs: t.node! };
}

/** Session options tried on onnxruntime-web for the per-image time (the pool uses the first). */
const WEB_OPTIONS: Record<string, Record<string, unknown>> = {
  'all (pool)': { graphOptimizationLevel: 'all' },
  extended: { graphOptimizationLevel: 'extended' },
  disabled: { graphOptimizationLevel: 'disabled' },
  'no arena, no mem pattern': { graphOptimizationLevel: 'all', enableCpuMemArena: false, enableMemPattern: false },
  'batch fixed to 1': { graphOptimizationLevel: 'all', freeDimensionOverrides: { N: 1 } },
};

async function inference() {
  const wasm = await compileWasmFromNodeModules();
  const ort = configureOrt(wasm.ort);
  const store = new FsModelStore(modelsDir);
  const manifest = await loadManifest(store);
  const pool = new ModelPool(ort, store, manifest, 1024 * MiB);
  const rows = [];
  const options = [];
  const runs = quick ? 60 : 300;
  const fixed = await fixedCost(ort, runs);
  for (const m of manifest.models) {
    const heapBefore = ortHeapBytes();
    await pool.session(m);
    const heapAfterCreate = ortHeapBytes();
    const { channels, height, width } = m.input;
    const per = channels * height * width;
    const x1 = new Float32Array(per).map((_, i) => Math.sin(i) * 0.5);
    const x8 = new Float32Array(per * 8).map((_, i) => Math.sin(i) * 0.5);
    const bytes = readFileSync(join(modelsDir, m.file));
    // The same bytes and options as the pool's session, to time session.run without the pool.
    const web = await ort.InferenceSession.create(new Uint8Array(bytes), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    const native = await ortNode.InferenceSession.create(join(modelsDir, m.file), { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
    const input = m.input.name;
    const t = await interleavedMedians(runs, {
      pool1: () => pool.run(m, x1, 1),
      web1: () => web.run({ [input]: new ort.Tensor('float32', x1, [1, channels, height, width]) }),
      node1: () => native.run({ [input]: new ortNode.Tensor('float32', x1, [1, channels, height, width]) }),
      web8: () => web.run({ [input]: new ort.Tensor('float32', x8, [8, channels, height, width]) }),
      node8: () => native.run({ [input]: new ortNode.Tensor('float32', x8, [8, channels, height, width]) }),
    });
    const heapAfterRun = ortHeapBytes();
    // A run = the fixed cost (the trivial model's run) + the model's own kernels.
    const webKernels = t.web1! - fixed.webMs;
    const nodeKernels = t.node1! - fixed.nodeMs;
    rows.push({
      model: m.id,
      subtask: m.subtask,
      macs: m.macs,
      params: m.params,
      bytes: m.bytes,
      ortWebMs: round(t.pool1!, 4),
      ortWebSessionRunMs: round(t.web1!, 4),
      ortNodeMs: round(t.node1!, 4),
      ratio: round(t.pool1! / t.node1!, 2),
      ortWebFixedMs: round(fixed.webMs, 4),
      ortWebKernelsMs: round(webKernels, 4),
      ortNodeFixedMs: round(fixed.nodeMs, 4),
      ortNodeKernelsMs: round(nodeKernels, 4),
      kernelsRatio: round(webKernels / nodeKernels, 2),
      // Batch 8, per image: whether batching amortises anything in either runtime.
      ortWebBatch8PerImageMs: round(t.web8! / 8, 4),
      ortNodeBatch8PerImageMs: round(t.node8! / 8, 4),
      heapGrowthCreateBytes: heapAfterCreate - heapBefore,
      heapAfterRunBytes: heapAfterRun,
    });
    await web.release();
    await native.release();
    // Session options, side by side on this model.
    const sessions: Record<string, Awaited<ReturnType<typeof ort.InferenceSession.create>>> = {};
    for (const [name, o] of Object.entries(WEB_OPTIONS)) sessions[name] = await ort.InferenceSession.create(new Uint8Array(bytes), { executionProviders: ['wasm'], ...o });
    const reused = new ort.Tensor('float32', x1, [1, channels, height, width]);
    const byOption = await interleavedMedians(runs, {
      ...Object.fromEntries(Object.entries(sessions).map(([name, s]) => [name, () => s.run({ [input]: new ort.Tensor('float32', x1, [1, channels, height, width]) })])),
      'all, input tensor reused': () => sessions['all (pool)']!.run({ [input]: reused }),
    });
    for (const s of Object.values(sessions)) await s.release();
    options.push({ model: m.id, ...Object.fromEntries(Object.entries(byOption).map(([k, v]) => [k, round(v, 4)])) });
  }
  return { rows, options, heapAllLoadedBytes: ortHeapBytes(), codecs: wasm.codecs };
}

async function decoding(codecs: Awaited<ReturnType<typeof compileWasmFromNodeModules>>['codecs']) {
  await initCodecs(codecs);
  const cases = [
    { name: '28×28 PNG', file: 'shirt.png', js: (b: Uint8Array) => fastPngDecode(b), jsName: 'fast-png' },
    { name: '28×28 JPEG', file: 'sneaker.jpg', js: (b: Uint8Array) => jpegJs.decode(b, { useTArray: true }), jsName: 'jpeg-js' },
    { name: '1024×768 PNG', file: 'photo1024.png', js: (b: Uint8Array) => fastPngDecode(b), jsName: 'fast-png' },
    { name: '1024×768 JPEG', file: 'photo1024.jpg', js: (b: Uint8Array) => jpegJs.decode(b, { useTArray: true }), jsName: 'jpeg-js' },
  ];
  const rows = [];
  for (const c of cases) {
    const bytes = new Uint8Array(readFileSync(join(IMAGES, c.file)));
    const big = c.file.startsWith('photo');
    const runs = big ? (quick ? 5 : 20) : quick ? 200 : 1000;
    const wasmMs = await timeMedian(runs, () => decodeImage(bytes, 1 << 24));
    const jsMs = await timeMedian(runs, () => c.js(bytes));
    rows.push({ image: c.name, wasmMs: round(wasmMs, 4), pureJs: c.jsName, pureJsMs: round(jsMs, 4), wasmSpeedup: round(jsMs / wasmMs, 2) });
  }
  return rows;
}

const firstClassify = (url: string, body: Uint8Array<ArrayBuffer>) => fetch(url, { method: 'POST', body, headers: { 'content-type': 'image/png' } });

async function http(runtime: RuntimeName, subtask: string) {
  const server = await startServer(runtime, modelsDir);
  try {
    const body = Uint8Array.from(readFileSync(join(IMAGES, 'shirt.png')));
    const url = `${server.url}/v1/classify?subtask=${encodeURIComponent(subtask)}`;
    const coldStart = performance.now();
    const first = await firstClassify(url, body);
    if (!first.ok) throw new Error(`${runtime}: first classify answered ${first.status}: ${await first.text()}`);
    const firstClassifyMs = server.startMs + (performance.now() - coldStart);
    const amount = runtime === 'workerd' ? Math.min(requests, quick ? 500 : 2000) : requests;
    const pid = servingPid(server);
    const cpuBefore = cpuMs(pid);
    const { result, requestsPerSec } = await fixedRequests({ url, method: 'POST', body: Buffer.from(body), headers: { 'content-type': 'image/png' }, connections: 8, amount });
    return {
      runtime,
      requests: amount,
      requestsPerSec: round(requestsPerSec, 1),
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      // CPU the server spent per request: a figure the machine's other load does not distort.
      serverCpuMsPerRequest: round((cpuMs(pid) - cpuBefore) / amount, 3),
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      coldStartHealthzMs: round(server.startMs, 1),
      coldStartFirstClassifyMs: round(firstClassifyMs, 1),
    };
  } finally {
    await server.stop();
  }
}

function bundle() {
  const out = mkdtempSync(join(tmpdir(), 'facet-bundle-'));
  try {
    const wrangler = createRequire(import.meta.url).resolve('wrangler/bin/wrangler.js');
    execFileSync(process.execPath, [wrangler, 'deploy', '--dry-run', '--outdir', out, '--assets', modelsDir], { env: { ...process.env, ...WRANGLER_ENV }, stdio: 'ignore' });
    const files = readdirSync(out).filter((f) => !f.endsWith('.map') && f !== 'README.md');
    const raw = files.reduce((s, f) => s + statSync(join(out, f)).size, 0);
    const gzip = files.reduce((s, f) => s + gzipSync(readFileSync(join(out, f)), { level: 9 }).length, 0);
    return { rawBytes: raw, gzipBytes: gzip, files: files.map((f) => ({ file: f.replace(/^[0-9a-f]{40}-/, ''), bytes: statSync(join(out, f)).size })) };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  writeSync(fd, text);
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
}

const started = new Date().toISOString();
// This machine is shared: a fixed CPU task's time, before and after, tells a quiet run from a busy one.
const noiseBefore = machineNoise();
console.log(`machine noise before: a fixed CPU task takes p50 ${noiseBefore.p50} ms, p99 ${noiseBefore.p99} ms`);
console.log(`bench:edge on ${cpus().length}× ${cpus()[0]?.model} (load average ${loadavg()[0]!.toFixed(1)}), Node ${process.version}, models ${modelsDir}${quick ? ' (quick)' : ''}`);
const inf = await inference();
console.log('\nInference per image, batch 1, one thread (medians, web and node timed in alternating blocks):');
console.table(inf.rows.map((r) => ({ model: r.model, MACs: r.macs, 'ort-web ms': r.ortWebMs, 'ort-node ms': r.ortNodeMs, 'web/node': r.ratio, 'heap +create MiB': round(r.heapGrowthCreateBytes / MiB, 2) })));
console.log('Where a run goes (ms): fixed = a trivial one-op model run (input in, dispatch, output out); kernels = the rest; batch 8 per image:');
console.table(
  inf.rows.map((r) => ({
    model: r.model,
    'web pool.run': r.ortWebMs,
    'web session.run': r.ortWebSessionRunMs,
    'web fixed': r.ortWebFixedMs,
    'web kernels': r.ortWebKernelsMs,
    'node fixed': r.ortNodeFixedMs,
    'node kernels': r.ortNodeKernelsMs,
    'kernels web/node': r.kernelsRatio,
    'web b8/img': r.ortWebBatch8PerImageMs,
    'node b8/img': r.ortNodeBatch8PerImageMs,
  })),
);
console.log('onnxruntime-web session options, batch 1 (ms):');
console.table(inf.options);
console.log(`wasm heap with all ${inf.rows.length} models loaded: ${round(inf.heapAllLoadedBytes / MiB, 1)} MiB (Worker limit 128 MB)`);
if (argv.includes('--inference-only')) {
  console.log(`\n--inference-only: ${outPath} not written`);
  process.exit(0);
}
const decode = await decoding(inf.codecs);
console.log('\nImage decode (median):');
console.table(decode);
const manifest = await loadManifest(new FsModelStore(modelsDir));
const smallest = manifest.models.filter((m) => m.subtask).sort((a, b) => a.macs - b.macs)[0]!;
console.log(`\nHTTP: ${requests} requests (wrangler dev: fewer), concurrency 8, 28×28 PNG, subtask ${smallest.subtask} (${smallest.id}, ${smallest.macs} MACs)`);
const httpRows = [await http('node', smallest.subtask!), await http('workerd', smallest.subtask!)];
console.table(httpRows);
const coldRuns = quick ? 1 : 3;
console.log(`\nCold start (bench/edge-cold.ts, ${coldRuns} runs per variant, interleaved):`);
const coldMeasured = await measureColdStarts({ modelsDir: resolve(modelsDir), runs: coldRuns });
printColdStarts(coldMeasured.rows);
const cold = coldMeasured.rows;
const size = bundle();
console.log(`\nWorker bundle: ${round(size.rawBytes / MiB, 2)} MiB raw, ${round(size.gzipBytes / MiB, 2)} MiB gzip`);

const noiseAfter = machineNoise();
console.log(`machine noise after: p50 ${noiseAfter.p50} ms, p99 ${noiseAfter.p99} ms`);

const results = {
  benchmark: 'edge',
  started,
  finished: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadAverageAtEnd: loadavg()[0], noise: { before: noiseBefore, after: noiseAfter } },
  modelsDir,
  quick,
  inference: inf.rows,
  ortWebSessionOptions: inf.options,
  heapAllLoadedBytes: inf.heapAllLoadedBytes,
  decode,
  http: httpRows,
  coldStart: cold,
  bundle: size,
  goals: {
    ortWebWithin3xOfNode: inf.rows.every((r) => r.ratio <= 3),
    nodeAtLeast1000RpsP99Under20ms: httpRows[0]!.requestsPerSec >= 1000 && httpRows[0]!.p99Ms <= 20,
    // The serving runtimes as shipped (not the ablation rows, not tsx); wrangler dev is a development tool in front of workerd.
    coldStartUnder500ms: Object.fromEntries(cold.filter((c) => !c.variant.includes(', ') && c.variant !== 'node-tsx').map((c) => [c.variant, c.firstClassifyMs <= 500])),
    allModelsInside128MB: inf.heapAllLoadedBytes < 128e6,
  },
};
writeAtomic(outPath, JSON.stringify(results, null, 2) + '\n');
console.log('\ngoals:', results.goals, `\nwrote ${outPath}`);
