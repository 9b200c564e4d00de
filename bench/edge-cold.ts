/**
 * Cold start of the Node edge server (issue 5: ≤ 500 ms from process start to first answer),
 * measured as bench/edge.ts does: spawn the server, poll /healthz, then POST a 28×28 PNG to
 * /v1/classify for the smallest subtask model; both times count from the spawn. It polls every
 * 10 ms (bench/edge.ts: 100 ms) so the figures resolve the difference between the ways of
 * starting. Runs the variants interleaved, `--runs` times each, and prints and writes
 * medians and minima to bench/results/edge-cold.json.
 *
 *   npm run bench:edge-cold [-- --runs 7] [--models DIR] [--out bench/results/edge-cold.json]
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULT_MODELS } from '../edge/node.ts';
import { parseManifest } from '../shared/manifest.ts';
import { buildEdge } from '../scripts/build-edge.ts';
import { freePort } from '../test/edge/servers.ts';

const argv = process.argv.slice(2);
const arg = (name: string) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : undefined);
const runs = Number(arg('runs') ?? 5);
const modelsDir = arg('models') ?? DEFAULT_MODELS.find((d) => existsSync(`${d}/manifest.json`))!;
const outPath = arg('out') ?? 'bench/results/edge-cold.json';
const manifest = parseManifest(JSON.parse(readFileSync(join(modelsDir, 'manifest.json'), 'utf8')), modelsDir);
const smallest = manifest.models.filter((m) => m.subtask).sort((a, b) => a.macs - b.macs)[0]!;
const body = Uint8Array.from(readFileSync('test/fixtures/edge/images/shirt.png'));

/** The ways of starting the Node server compared; each gets `--port P --models DIR` appended. */
const VARIANTS: Record<string, { cmd: string; args: string[] }> = {
  // What `npm run serve:node` ran before: the tsx CLI, which starts node again with its loader.
  'tsx edge/node.ts (before)': { cmd: 'node_modules/.bin/tsx', args: ['edge/node.ts'] },
  'node scripts/serve-node.mjs (now)': { cmd: process.execPath, args: ['scripts/serve-node.mjs'] },
  // The same with npm's own start-up in front, as a user types it.
  'npm run serve:node (now)': { cmd: 'npm', args: ['run', '--silent', 'serve:node', '--'] },
};

async function coldStart({ cmd, args }: { cmd: string; args: string[] }): Promise<{ healthzMs: number; firstClassifyMs: number }> {
  const port = await freePort();
  const started = performance.now();
  // Its own process group, so that stopping it also stops what npm or tsx started.
  const child = spawn(cmd, [...args, '--port', String(port), '--models', modelsDir], { detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FACET_API_KEY: '' } });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  try {
    let healthzMs: number | undefined;
    while (healthzMs === undefined) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${stderr}`);
      if (performance.now() - started > 60_000) throw new Error(`no /healthz answer within 60 s: ${stderr}`);
      try {
        if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) healthzMs = performance.now() - started;
      } catch {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    const res = await fetch(`http://127.0.0.1:${port}/v1/classify?subtask=${encodeURIComponent(smallest.subtask!)}`, { method: 'POST', body, headers: { 'content-type': 'image/png' } });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`first classify answered ${res.status}`);
    return { healthzMs, firstClassifyMs: performance.now() - started };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
    await exited;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const round = (x: number) => Math.round(x);

// A fresh bundle, so no measured start pays for a rebuild.
const built = await buildEdge();
console.log(`bundle: ${built.out} (${(built.bytes / 1024).toFixed(0)} KiB); models ${modelsDir}, subtask ${smallest.subtask}; ${runs} runs each, interleaved; load average ${loadavg()[0]!.toFixed(2)} on ${cpus().length} CPUs`);
const samples = new Map(Object.keys(VARIANTS).map((k) => [k, [] as { healthzMs: number; firstClassifyMs: number }[]]));
for (let i = 0; i < runs; i++) for (const [name, variant] of Object.entries(VARIANTS)) samples.get(name)!.push(await coldStart(variant));
const rows = [...samples].map(([variant, s]) => ({
  variant,
  healthzMedianMs: round(median(s.map((x) => x.healthzMs))),
  firstClassifyMedianMs: round(median(s.map((x) => x.firstClassifyMs))),
  firstClassifyMinMs: round(Math.min(...s.map((x) => x.firstClassifyMs))),
  firstClassifyMaxMs: round(Math.max(...s.map((x) => x.firstClassifyMs))),
}));
console.table(rows);

const result = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadAverage: loadavg()[0], modelsDir, subtask: smallest.subtask, runs, rows, samples: Object.fromEntries(samples) };
mkdirSync(dirname(outPath), { recursive: true });
const tmp = `${outPath}.${process.pid}.tmp`;
const fd = openSync(tmp, 'w');
writeSync(fd, JSON.stringify(result, null, 1) + '\n');
fsyncSync(fd);
closeSync(fd);
renameSync(tmp, outPath);
console.log(`wrote ${outPath}`);
