/**
 * Degradation throughput: images/s of degradeBatch per kind, for Fashion-MNIST-sized
 * (28×28×1) and CIFAR-sized (32×32×3) batches, levels drawn uniformly over each kind's
 * full range per image as the trainer does. Also times batchToNHWC (normalization).
 * Prints a table and writes bench/results/degrade.json.
 *   npm run bench:degrade [-- --batch 256 --seconds 1]
 */
import { mkdirSync, openSync, fsyncSync, writeSync, closeSync, renameSync } from 'node:fs';
import { DEGRADATION_LEVELS, degradeBatch } from '../shared/degrade.ts';
import { DEGRADATION_KINDS } from '../shared/manifest.ts';
import { batchToNHWC } from '../shared/preprocess.ts';
import { Rng } from '../shared/rng.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!(v > 0)) throw new Error(`--${name} needs a positive number, got ${process.argv[i + 1]}`);
  return v;
}

const batch = arg('batch', 256);
const seconds = arg('seconds', 1);
const shapes = [
  { name: '28x28x1', h: 28, w: 28, c: 1 },
  { name: '32x32x3', h: 32, w: 32, c: 3 },
];

/**
 * Runs `fn` repeatedly for about `seconds` after a warm-up (so the JIT has settled).
 * Returns images per wall-clock second and per CPU second of this process: on a shared,
 * loaded machine the CPU-time figure is the one that says what the code costs.
 */
function rate(fn: () => void): { wall: number; cpu: number } {
  const warm = performance.now();
  while (performance.now() - warm < 300) fn();
  let runs = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let now = start;
  while (now - start < seconds * 1000) {
    fn();
    runs++;
    now = performance.now();
  }
  const cpu = process.cpuUsage(cpu0);
  return { wall: (runs * batch) / ((now - start) / 1000), cpu: (runs * batch) / ((cpu.user + cpu.system) / 1e6) };
}

const rows: { shape: string; op: string; imagesPerSec: number; imagesPerCpuSec: number; cpuMsPerBatch: number }[] = [];
for (const s of shapes) {
  const rng = new Rng(1);
  // Photo-like content: smooth gradients plus texture, so JPEG does real work.
  const images = new Uint8Array(batch * s.h * s.w * s.c).map((_, i) => (i * 7 + ((i >> 5) % 97) * 3 + rng.int(0, 40)) & 255);
  for (const kind of DEGRADATION_KINDS) {
    const { min, max } = DEGRADATION_LEVELS[kind];
    const levels = Int32Array.from({ length: batch }, () => rng.int(min, max));
    const r = rate(() => void degradeBatch(images, batch, s.h, s.w, s.c, kind, levels, rng));
    rows.push({ shape: s.name, op: kind, imagesPerSec: r.wall, imagesPerCpuSec: r.cpu, cpuMsPerBatch: (batch / r.cpu) * 1000 });
  }
  const mean = new Array(s.c).fill(0.5), std = new Array(s.c).fill(0.25);
  const r = rate(() => void batchToNHWC(images, batch, s.h, s.w, s.c, { mean, std }));
  rows.push({ shape: s.name, op: 'normalize', imagesPerSec: r.wall, imagesPerCpuSec: r.cpu, cpuMsPerBatch: (batch / r.cpu) * 1000 });
}

console.log(`degradeBatch, batch ${batch}, levels uniform over each range, Node ${process.version}, one thread`);
console.log('| shape | op | images/s (wall) | images per CPU-s | CPU ms per batch |');
console.log('|---|---|---|---|---|');
const fmt = (v: number) => Math.round(v).toLocaleString('en');
for (const r of rows) console.log(`| ${r.shape} | ${r.op} | ${fmt(r.imagesPerSec)} | ${fmt(r.imagesPerCpuSec)} | ${r.cpuMsPerBatch.toFixed(2)} |`);

const dir = new URL('./results/', import.meta.url).pathname;
mkdirSync(dir, { recursive: true });
const path = `${dir}degrade.json`;
const tmp = `${path}.${process.pid}.tmp`;
const fd = openSync(tmp, 'w');
writeSync(fd, JSON.stringify({ batch, node: process.version, measuredAt: new Date().toISOString(), rows }, null, 2) + '\n');
fsyncSync(fd);
closeSync(fd);
renameSync(tmp, path);
console.log(`wrote ${path}`);
