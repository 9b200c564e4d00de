/**
 * Training speed of the engines side by side: CIFAR-style ResNet-20 (projection shortcuts,
 * GAP head) on 28×28×1, one SGD step (momentum 0.9, weight decay 5e-4) per batch, after
 * warm-up steps. Every engine trains the same network from the same parameters on the same
 * batch; each measurement runs in its own process (bench/train-child.ts, or
 * bench/torch_train.py for PyTorch), so its peak resident memory is its own; engines are
 * interleaved round by round, so a noisy minute hits all of them.
 *
 *   npm run bench:train -- [--engines ort,tfjs-wasm,pytorch] [--batches 64,128] [--threads 1,all]
 *                          [--rounds 3] [--steps 12] [--device cpu|cuda] [--out bench/results/train-engines.json]
 *
 * Engines: `ort` (with options after a colon: `ort:replicas=1` for one session on intra-op
 * threads; `ort:dw=conv|gemm|patches|flat`, `ort:dx=convtranspose|conv`,
 * `ort:bn=elementwise|batchnorm` and `ort:conv=nchw|nchwc8|nchwc16` (default: the machine's
 * NCHWc block on cpu) for the training graph's formulations, several joined by
 * `+`, e.g. `ort:dw=gemm+bn=elementwise`; `ort:provider=webgpu`), `tfjs-wasm` (one thread in Node, so measured at 1 thread only),
 * `tfjs-webgpu`, and `pytorch` (Debian's python3-torch; "unavailable" when it is not
 * installed). Before timing, each engine's first-step gradients on 16 images are
 * compared with PyTorch's in float64 (tfjs-wasm's without PyTorch): the largest error
 * relative to the largest reference value of each parameter, worst parameter named.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { initParams, resnet } from '../compiler/graph/builders.ts';
import type { ParamStore } from '../compiler/graph/ir.ts';
import { writeFileAtomic } from '../compiler/pipeline/cache.ts';
import { readCheckpoint, writeCheckpoint } from '../compiler/train/checkpoint.ts';
import { Rng } from '../shared/rng.ts';
import { median } from './stats.ts';

const { values: args } = parseArgs({
  options: {
    engines: { type: 'string', default: 'ort,tfjs-wasm,pytorch' },
    batches: { type: 'string', default: '64,128' },
    threads: { type: 'string', default: '1,all' },
    rounds: { type: 'string', default: '3' },
    steps: { type: 'string', default: '12' },
    device: { type: 'string', default: 'cpu' },
    python: { type: 'string', default: '/usr/bin/python3' },
    out: { type: 'string', default: 'bench/results/train-engines.json' },
  },
});
const ALL = availableParallelism();
const engines = args.engines!.split(',').filter(Boolean);
const batches = args.batches!.split(',').map(Number);
const threadCounts = [...new Set(args.threads!.split(',').map((t) => (t === 'all' ? ALL : Number(t))))];
const rounds = Number(args.rounds);
const ROOT = resolve(import.meta.dirname, '..');

const torchVersion = (() => {
  try {
    return execFileSync(args.python!, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
})();
const available = (engine: string): string | true => (engine.startsWith('pytorch') && !torchVersion ? `unavailable: ${args.python} cannot import torch (apt-get install python3-torch)` : true);
/** tfjs-wasm computes on one thread in Node whatever the machine has. */
const threadsFor = (engine: string): number[] => (engine === 'tfjs-wasm' ? [1] : threadCounts);

// The network, its parameters and the batches, written once for every process.
const work = mkdtempSync(join(tmpdir(), 'facet-bench-train-'));
const graph = resnet({ depth: 20, width: 1, input: [28, 28, 1], classes: 10, shortcut: 'projection', head: 'gap' });
const params = initParams(graph, new Rng(0));
writeFileSync(join(work, 'graph.json'), JSON.stringify(graph));
writeCheckpoint(join(work, 'params.ckpt'), { meta: null, tensors: params });
/** Gradients are compared on this many images: at 64 every float32 engine, PyTorch's own included, is 2–5% off float64 (BN's backward sums cancel over 50k values per channel); at 16 ours is usually 3e-6 off, but a draw can put an activation on a ReLU or max-pool kink where every float32 engine, PyTorch's included, lands 1e-2 off (docs/training-engine.md). */
const CHECK_BATCH = 16;
for (const n of new Set([...batches, CHECK_BATCH])) {
  // One generator per batch size, so a batch (the gradient check's above all) is the same
  // whatever other sizes a run times.
  const dataRng = new Rng(1).fork(n);
  const x = Float32Array.from({ length: n * 784 }, () => dataRng.gaussian());
  const labels = Int32Array.from({ length: n }, () => dataRng.int(0, 9));
  writeFileSync(join(work, `batch-${n}.bin`), Buffer.concat([Buffer.from(x.buffer), Buffer.from(labels.buffer)]));
}

interface Measured {
  imgPerSec: number;
  stepMs: number;
  peakRssMiB: number;
  firstLoss: number;
  engine: string;
}

function run(engine: string, threads: number, batch: number, grads?: string): Promise<Measured> {
  const torch = engine === 'pytorch' || engine === 'pytorch-float64';
  const [cmd, argv] = torch
      ? [args.python!, [join(ROOT, 'bench/torch_train.py'), '--work', work, '--batch', String(batch), '--threads', String(threads), '--steps', args.steps!, '--device', args.device!, ...(grads ? ['--grads', grads] : []), ...(engine === 'pytorch-float64' ? ['--float64', '--steps', '1', '--warmup', '0'] : [])]]
      : [process.execPath, ['--import', 'tsx', join(ROOT, 'bench/train-child.ts'), '--work', work, '--engine', engine, '--threads', String(threads), '--batch', String(batch), '--steps', args.steps!, ...(grads ? ['--grads', grads] : [])]];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && line.startsWith('{')) resolvePromise(JSON.parse(line) as Measured);
      else reject(new Error(`${engine} at ${threads} thread(s), batch ${batch}: exit ${code}\n${err.slice(-2000)}`));
    });
  });
}

/** Largest |a − ref| over the largest |ref|, per parameter; the worst parameter. */
function gradError(got: ParamStore, ref: ParamStore): { maxRelErr: number; worst: string } {
  let maxRelErr = 0;
  let worst = '';
  for (const [key, r] of ref) {
    const g = got.get(key);
    if (!g) return { maxRelErr: Infinity, worst: `${key} missing` };
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < r.data.length; i++) {
      diff = Math.max(diff, Math.abs(g.data[i]! - r.data[i]!));
      scale = Math.max(scale, Math.abs(r.data[i]!));
    }
    const rel = diff / (scale || 1);
    if (rel > maxRelErr) [maxRelErr, worst] = [rel, key];
  }
  return { maxRelErr, worst };
}

const log = (line: string) => console.error(line);
log(`bench:train: ${graph.arch} 28×28×1; engines ${engines.join(', ')}; batches ${batches.join(', ')}; threads ${threadCounts.join(', ')}; ${rounds} rounds; ${cpus()[0]?.model ?? 'cpu'} × ${ALL}`);

// Gradient check: first-step gradients on CHECK_BATCH images, against PyTorch's in float64
// (PyTorch's own float32 CPU gradients are ~1e-2 off float64 on this model), or against
// tfjs-wasm's without PyTorch.
const checkBatch = CHECK_BATCH;
const reference = torchVersion ? 'pytorch-float64' : 'tfjs-wasm';
const gradFiles = new Map<string, string>();
for (const engine of new Set([reference, ...engines])) {
  if (available(engine) !== true) continue;
  const file = join(work, `grads-${engine.replace(/[^a-z0-9]+/gi, '_')}.ckpt`);
  try {
    await run(engine, 1, checkBatch, file);
    gradFiles.set(engine, file);
  } catch (err) {
    log(`gradient check: ${(err as Error).message}`);
  }
}
const refGrads = gradFiles.has(reference) ? readCheckpoint(gradFiles.get(reference)!).tensors : undefined;

type Key = string;
interface Row {
  engine: string;
  threads: number;
  batch: number;
  imgPerSec: number | null;
  stepMs: number | null;
  peakRssMiB: number | null;
  perRound: number[];
  description: string | null;
  gradCheck: { reference: string; maxRelErr: number; worst: string } | null;
  error: string | null;
}
const samples = new Map<Key, Measured[]>();
const errors = new Map<Key, string>();
const key = (engine: string, threads: number, batch: number): Key => `${engine}|${threads}|${batch}`;
for (let round = 1; round <= rounds; round++) {
  for (const batch of batches) {
    for (const threads of threadCounts) {
      for (const engine of engines) {
        if (!threadsFor(engine).includes(threads)) continue;
        const k = key(engine, threads, batch);
        const ok = available(engine);
        if (ok !== true) {
          errors.set(k, ok);
          continue;
        }
        try {
          const m = await run(engine, threads, batch);
          samples.set(k, [...(samples.get(k) ?? []), m]);
          log(`round ${round}: ${engine.padEnd(12)} ${threads} thread(s) batch ${batch}: ${m.imgPerSec.toFixed(1)} img/s, ${m.stepMs.toFixed(1)} ms/step, peak RSS ${m.peakRssMiB.toFixed(0)} MiB`);
        } catch (err) {
          errors.set(k, (err as Error).message.split('\n').slice(0, 3).join(' '));
          log(`round ${round}: ${(err as Error).message}`);
        }
      }
    }
  }
}

const rows: Row[] = [];
for (const batch of batches) {
  for (const threads of threadCounts) {
    for (const engine of engines) {
      if (!threadsFor(engine).includes(threads)) continue;
      const k = key(engine, threads, batch);
      const s = samples.get(k) ?? [];
      const check = gradFiles.has(engine) && refGrads ? { reference, ...gradError(readCheckpoint(gradFiles.get(engine)!).tensors, refGrads) } : null;
      rows.push({
        engine,
        threads,
        batch,
        imgPerSec: s.length ? median(s.map((m) => m.imgPerSec)) : null,
        stepMs: s.length ? median(s.map((m) => m.stepMs)) : null,
        peakRssMiB: s.length ? Math.max(...s.map((m) => m.peakRssMiB)) : null,
        perRound: s.map((m) => Math.round(m.imgPerSec * 10) / 10),
        description: s[0]?.engine ?? null,
        gradCheck: check,
        error: errors.get(k) ?? null,
      });
    }
  }
}
rmSync(work, { recursive: true, force: true });

const find = (engine: string, threads: number, batch: number) => rows.find((r) => r.engine === engine && r.threads === threads && r.batch === batch)?.imgPerSec ?? null;
const ratio = (a: number | null, b: number | null) => (a && b ? Math.round((100 * a) / b) / 100 : null);
const ratios = batches.flatMap((batch) =>
  engines
    .filter((e) => e.startsWith('ort'))
    .map((e) => ({
      engine: e,
      batch,
      [`allCores(${ALL})VsPytorchAllCores`]: ratio(find(e, ALL, batch), find('pytorch', ALL, batch)),
      oneThreadVsPytorchOneThread: ratio(find(e, 1, batch), find('pytorch', 1, batch)),
      allCoresVsOneThread: ratio(find(e, ALL, batch), find(e, 1, batch)),
      allCoresVsTfjsWasm: ratio(find(e, ALL, batch), find('tfjs-wasm', 1, batch)),
      peakRssVsPytorch: ratio(rows.find((r) => r.engine === e && r.batch === batch && r.threads === ALL)?.peakRssMiB ?? null, rows.find((r) => r.engine === 'pytorch' && r.batch === batch && r.threads === ALL)?.peakRssMiB ?? null),
    })),
);

console.log('| engine | threads | batch | img/s (median) | per round | ms/step | peak RSS MiB | grad check |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const check = r.gradCheck ? `${r.gradCheck.maxRelErr.toExponential(1)} vs ${r.gradCheck.reference}` : '—';
  console.log(`| ${r.engine} | ${r.threads} | ${r.batch} | ${r.imgPerSec?.toFixed(1) ?? r.error} | ${r.perRound.join(', ')} | ${r.stepMs?.toFixed(1) ?? '—'} | ${r.peakRssMiB?.toFixed(0) ?? '—'} | ${check} |`);
}
console.log('\n' + JSON.stringify(ratios, null, 1));
await writeFileAtomic(
  args.out!,
  JSON.stringify(
    {
      benchmark: 'train',
      model: graph.arch,
      input: [28, 28, 1],
      finished: new Date().toISOString(),
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: ALL, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, torch: torchVersion ?? null },
      optimizer: 'sgd momentum 0.9, weight decay 5e-4',
      rounds,
      rows,
      ratios,
    },
    null,
    1,
  ),
);
log(`wrote ${args.out}`);
