/**
 * Edge benchmark (issue 5): per model, onnxruntime-web (wasm, 1 thread) vs onnxruntime-node
 * (1 thread); wasm heap per model and with all loaded; wasm vs pure-JS image decoding; HTTP
 * throughput and p50/p99 at concurrency 8 on the Node server and wrangler dev (28×28 PNG, the
 * smallest subtask model); cold start per runtime; Worker bundle size. Prints a table and
 * writes bench/results/edge.json. Loopback only.
 *
 *   npm run bench:edge [-- --models DIR] [--requests 5000] [--quick] [--out bench/results/edge.json]
 */
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { decode as fastPngDecode } from 'fast-png';
import jpegJs from 'jpeg-js';
import * as ortNode from 'onnxruntime-node';
import { decodeImage, initCodecs } from '../edge/decode.ts';
import { ModelPool } from '../edge/engine.ts';
import { DEFAULT_MODELS } from '../edge/node.ts';
import { configureOrt, ortHeapBytes } from '../edge/ort.ts';
import { loadManifest } from '../edge/store.ts';
import { FsModelStore } from '../edge/store-fs.ts';
import { compileWasmFromNodeModules } from '../edge/wasm-files.ts';
import { cpuMs, runtimeBinary, servingPid, startServer, type RuntimeName } from '../test/edge/servers.ts';

const argv = process.argv.slice(2);
const arg = (name: string) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : undefined);
const quick = argv.includes('--quick');
const modelsDir = arg('models') ?? DEFAULT_MODELS.find((d) => existsSync(`${d}/manifest.json`))!;
const requests = Number(arg('requests') ?? (quick ? 1000 : 5000));
const IMAGES = 'test/fixtures/edge/images';
const outPath = arg('out') ?? 'bench/results/edge.json';
const MiB = 2 ** 20;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
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

async function inference() {
  const wasm = await compileWasmFromNodeModules();
  const ort = configureOrt(wasm.ort);
  const store = new FsModelStore(modelsDir);
  const manifest = await loadManifest(store);
  const pool = new ModelPool(ort, store, manifest, 1024 * MiB);
  const rows = [];
  const runs = quick ? 50 : 200;
  for (const m of manifest.models) {
    const heapBefore = ortHeapBytes();
    await pool.session(m.id);
    const heapAfterCreate = ortHeapBytes();
    const { channels, height, width } = m.input;
    const x = new Float32Array(channels * height * width).map((_, i) => Math.sin(i) * 0.5);
    const web = await timeMedian(runs, () => pool.run(m, x, 1));
    const heapAfterRun = ortHeapBytes();
    const session = await ortNode.InferenceSession.create(join(modelsDir, m.file), { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
    const tensor = new ortNode.Tensor('float32', x, [1, channels, height, width]);
    const native = await timeMedian(runs, () => session.run({ [m.input.name]: tensor }));
    await session.release();
    rows.push({
      model: m.id,
      subtask: m.subtask,
      macs: m.macs,
      params: m.params,
      bytes: m.bytes,
      ortWebMs: round(web, 4),
      ortNodeMs: round(native, 4),
      ratio: round(web / native, 2),
      heapGrowthCreateBytes: heapAfterCreate - heapBefore,
      heapAfterRunBytes: heapAfterRun,
    });
  }
  return { rows, heapAllLoadedBytes: ortHeapBytes(), codecs: wasm.codecs };
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
    const result = await autocannon({ url, method: 'POST', body: Buffer.from(body), headers: { 'content-type': 'image/png' }, connections: 8, amount });
    return {
      runtime,
      requests: amount,
      requestsPerSec: round(result.requests.average, 1),
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

async function coldStart(runtime: RuntimeName, subtask: string) {
  const server = await startServer(runtime, modelsDir);
  try {
    const t = performance.now();
    const res = await firstClassify(`${server.url}/v1/classify?subtask=${encodeURIComponent(subtask)}`, Uint8Array.from(readFileSync(join(IMAGES, 'shirt.png'))));
    if (!res.ok) throw new Error(`${runtime}: ${res.status}`);
    return { runtime, coldStartHealthzMs: round(server.startMs, 1), coldStartFirstClassifyMs: round(server.startMs + performance.now() - t, 1) };
  } finally {
    await server.stop();
  }
}

function bundle() {
  const out = mkdtempSync(join(tmpdir(), 'facet-bundle-'));
  try {
    const wrangler = createRequire(import.meta.url).resolve('wrangler/bin/wrangler.js');
    execFileSync(process.execPath, [wrangler, 'deploy', '--dry-run', '--outdir', out, '--assets', modelsDir], { env: { ...process.env, WRANGLER_SEND_METRICS: 'false' }, stdio: 'ignore' });
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
console.log(`bench:edge on ${cpus().length}× ${cpus()[0]?.model} (load average ${loadavg()[0]!.toFixed(1)}), Node ${process.version}, models ${modelsDir}${quick ? ' (quick)' : ''}`);
const inf = await inference();
console.log('\nInference per image, batch 1, one thread (median):');
console.table(inf.rows.map((r) => ({ model: r.model, MACs: r.macs, 'ort-web ms': r.ortWebMs, 'ort-node ms': r.ortNodeMs, 'web/node': r.ratio, 'heap +create MiB': round(r.heapGrowthCreateBytes / MiB, 2) })));
console.log(`wasm heap with all ${inf.rows.length} models loaded: ${round(inf.heapAllLoadedBytes / MiB, 1)} MiB (Worker limit 128 MB)`);
const decode = await decoding(inf.codecs);
console.log('\nImage decode (median):');
console.table(decode);
const manifest = await loadManifest(new FsModelStore(modelsDir));
const smallest = manifest.models.filter((m) => m.subtask).sort((a, b) => a.macs - b.macs)[0]!;
console.log(`\nHTTP: ${requests} requests (wrangler dev: fewer), concurrency 8, 28×28 PNG, subtask ${smallest.subtask} (${smallest.id}, ${smallest.macs} MACs)`);
const httpRows = [await http('node', smallest.subtask!), await http('workerd', smallest.subtask!)];
console.table(httpRows);
const cold = [];
for (const r of ['bun', 'deno'] as const) {
  const why = runtimeBinary(r).reason;
  if (why) console.warn(`cold start on ${r} skipped: ${why}`);
  else cold.push(await coldStart(r, smallest.subtask!));
}
cold.unshift(...httpRows.map((h) => ({ runtime: h.runtime, coldStartHealthzMs: h.coldStartHealthzMs, coldStartFirstClassifyMs: h.coldStartFirstClassifyMs })));
console.log('\nCold start (process start → first /healthz, → first classification answer):');
console.table(cold);
const size = bundle();
console.log(`\nWorker bundle: ${round(size.rawBytes / MiB, 2)} MiB raw, ${round(size.gzipBytes / MiB, 2)} MiB gzip`);

const results = {
  benchmark: 'edge',
  started,
  finished: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadAverageAtEnd: loadavg()[0] },
  modelsDir,
  quick,
  inference: inf.rows,
  heapAllLoadedBytes: inf.heapAllLoadedBytes,
  decode,
  http: httpRows,
  coldStart: cold,
  bundle: size,
  goals: {
    ortWebWithin3xOfNode: inf.rows.every((r) => r.ratio <= 3),
    nodeAtLeast1000RpsP99Under20ms: httpRows[0]!.requestsPerSec >= 1000 && httpRows[0]!.p99Ms <= 20,
    coldStartUnder500ms: cold.every((c) => c.coldStartFirstClassifyMs <= 500),
    allModelsInside128MB: inf.heapAllLoadedBytes < 128e6,
  },
};
writeAtomic(outPath, JSON.stringify(results, null, 2) + '\n');
console.log('\ngoals:', results.goals, `\nwrote ${outPath}`);
