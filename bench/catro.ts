/**
 * CATRO costs: Stage II selection, scatter accumulation, Stage I budgets, and a whole
 * catroPrune on ResNet-20 (28×28×1) through the tfjs interpreter (wasm backend unless
 * --backend says otherwise). Wall and process-CPU seconds, since the machine is shared.
 * Prints a table and writes bench/results/catro.json.
 *   npx tsx bench/catro.ts [--backend wasm|cpu] [--per-class 50] [--classes 4]
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { greedyBudget, ratioBudget } from '../compiler/catro/budget.ts';
import { catroPrune } from '../compiler/catro/catro.ts';
import { ScatterAccumulator, type Scatter } from '../compiler/catro/scatter.ts';
import { selectLayer } from '../compiler/catro/select.ts';
import { prunableSpaces } from '../compiler/catro/spaces.ts';
import { tfjsTapRunner } from '../compiler/engine/tfjs/engine.ts';
import { initParams, resnet } from '../compiler/graph/builders.ts';
import { countGraph } from '../compiler/graph/count.ts';
import { type BackendName, initBackend } from '../compiler/tf/backend.ts';
import { Rng } from '../shared/rng.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1]!;
}
const backend = arg('backend', 'wasm') as BackendName;
const perClass = Number(arg('per-class', '50'));
const subtaskClasses = Number(arg('classes', '4'));

interface Row {
  what: string;
  wallMs: number;
  cpuMs: number;
  note?: string;
}
const rows: Row[] = [];

async function time(what: string, fn: () => unknown, note?: string): Promise<void> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  rows.push({ what, wallMs, cpuMs: (cpu.user + cpu.system) / 1000, note });
}

const rng = new Rng(1);
for (const C of [64, 512, 2048]) {
  const b = Float64Array.from({ length: C }, () => rng.float() * 10);
  const w = Float64Array.from({ length: C }, () => 0.1 + rng.float());
  let iters = 0;
  await time(`selectLayer C=${C} k=${C / 2} ×100`, () => {
    for (let i = 0; i < 100; i++) iters = selectLayer(b, w, C / 2).lambdas.length;
  });
  rows[rows.length - 1]!.note = `${iters} λ values`;
}

{
  const acc = new ScatterAccumulator({ classes: 10, height: 28, width: 28, channels: 16 });
  const x = Float32Array.from({ length: 64 * 28 * 28 * 16 }, () => rng.float());
  const labels = Array.from({ length: 64 }, (_, i) => i % 10);
  await time('scatter add 10 batches of 64×28×28×16', () => {
    for (let i = 0; i < 10; i++) acc.add(x, labels);
  });
  await time('scatter() 10 classes, 28×28×16', () => acc.scatter());
}

const r56 = resnet({ depth: 56, input: [32, 32, 3], classes: 10, shortcut: 'projection' });
for (const mode of ['inner', 'residual'] as const) {
  const spaces = prunableSpaces(r56, mode);
  const target = 0.25 * countGraph(r56).macs;
  await time(`ratioBudget ResNet-56 ${mode} (${spaces.length} spaces) to 25%`, () => ratioBudget(r56, spaces, target));
  const scatters = new Map<string, Scatter>(
    spaces.map((s) => [s.id, { b: Float64Array.from({ length: s.channels }, () => rng.float()), w: Float64Array.from({ length: s.channels }, () => 0.1 + rng.float()) }]),
  );
  await time(`greedyBudget ResNet-56 ${mode} to 25%`, () => greedyBudget(r56, spaces, scatters, target));
}

const used = await initBackend(backend);
const r20 = resnet({ depth: 20, input: [28, 28, 1], classes: 10 });
const params = initParams(r20, new Rng(2));
const n = perClass * subtaskClasses;
const calib = { x: Float32Array.from({ length: n * 784 }, () => rng.gaussian()), slots: Array.from({ length: n }, (_, i) => i % subtaskClasses) };
const classes = Array.from({ length: subtaskClasses }, (_, i) => i);
for (const method of ['ratio', 'greedy'] as const) {
  let macs = '';
  await time(`catroPrune ResNet-20 28×28×1, ${n} calib images, flops 0.25 ${method} (tfjs ${used})`, async () => {
    const res = await catroPrune(r20, params, calib, tfjsTapRunner, { classes, budget: { flops: 0.25, method } });
    macs = `${(res.macs.full / 1e6).toFixed(2)}M → ${(res.macs.pruned / 1e6).toFixed(2)}M MACs`;
  });
  rows[rows.length - 1]!.note = macs;
}

console.log('| what | wall ms | cpu ms | note |\n|---|---|---|---|');
for (const r of rows) console.log(`| ${r.what} | ${r.wallMs.toFixed(1)} | ${r.cpuMs.toFixed(1)} | ${r.note ?? ''} |`);

mkdirSync('bench/results', { recursive: true });
const path = 'bench/results/catro.json';
const tmp = `${path}.tmp-${process.pid}`;
const fd = openSync(tmp, 'w');
writeSync(fd, JSON.stringify({ date: new Date().toISOString(), node: process.version, backend: used, rows }, null, 2) + '\n');
fsyncSync(fd);
closeSync(fd);
renameSync(tmp, path);
