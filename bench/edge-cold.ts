/**
 * Cold start of the edge server on every runtime (issue 5: ≤ 500 ms from process start to the
 * first classify answer), with a breakdown of where the time goes.
 *
 * Each variant is spawned fresh; the bench polls /healthz every 10 ms, then POSTs a 28×28 PNG
 * to /v1/classify for the smallest subtask model; both times count from the spawn. Node, Bun
 * and Deno run with FACET_TRACE_STARTUP=1, so the server prints its phase marks
 * (edge/startup.ts: entry, modules-loaded, wasm-compiled, app-created, listening,
 * ort-instantiated, ort-warmed, model-requested, model-verified, session-created, first-run; ms since its process started).
 * For Workers two hosts are measured apart: `workerd serve` on the prebuilt upload bundle
 * (the serving runtime alone), and `wrangler dev` as `npm start` runs it (wrangler's own
 * start-up and esbuild bundling in front of the same workerd). The variants run interleaved,
 * `--runs` times each; the bench prints and writes medians.
 *
 *   npm run bench:edge-cold [-- --runs 5] [--models DIR] [--only node-bundle,deno]
 *                            [--before DIR] [--idle-ms 2000] [--out bench/results/edge-cold.json]
 *
 * --before DIR adds the Node/Bun/Deno variants run from another checkout of the repository
 * (e.g. `git archive` of an older commit, with node_modules and models linked in), so a change
 * is measured side by side with what it replaces, on the same machine in the same minutes.
 * --idle-ms N waits N ms after /healthz before the first classify and also reports that
 * request's own latency: the first request to a server that started a moment before.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseStartupMarks, type StartupMark } from '../edge/startup.ts';
import { parseManifest } from '../shared/manifest.ts';
import { buildEdge } from '../scripts/build-edge.ts';
import { DEFAULT_MODELS } from '../edge/node.ts';
import { WASM_V8_FLAGS } from '../edge/wasm-files.ts';
import { WRANGLER_ENV } from '../edge/wrangler-env.ts';
import { DENO_V8_FLAGS, freePort, prebuiltWorker, runtimeBinary, type PrebuiltWorker } from '../test/edge/servers.ts';
import { optionValue } from './args.ts';
import { median } from './stats.ts';

const wrangler = createRequire(import.meta.url).resolve('wrangler/bin/wrangler.js');
const body = Uint8Array.from(readFileSync('test/fixtures/edge/images/shirt.png'));

/** How to start one variant on a port (`extra`: a second free port, for wrangler's inspector). */
type Variant = (port: number, extra: number) => { cmd: string; args: string[]; cwd?: string; env?: Record<string, string> };

export interface ColdStartOptions {
  modelsDir: string;
  runs: number;
  /** Another checkout to run the Node/Bun/Deno variants from as well, marked "(before)". */
  before?: string;
  /** Prefixes of the variant names to run (`node-bundle` runs all its variants); all when absent. */
  only?: string[];
  /**
   * Wait this long after the first /healthz answer before the first classify, and time that
   * request alone: what the first request costs once a server has had a moment since it started
   * (ModelPool.warmUp's case), rather than the start-to-answer cold start. 0: no wait.
   */
  idleMs?: number;
}

function variants(options: ColdStartOptions, worker: PrebuiltWorker): Record<string, Variant> {
  const { modelsDir, before, only } = options;
  const local = (port: number) => ['--port', String(port), '--models', modelsDir];
  const bun = runtimeBinary('bun');
  const deno = runtimeBinary('deno');
  if (bun.reason) console.warn(`bun skipped: ${bun.reason}`);
  if (deno.reason) console.warn(`deno skipped: ${deno.reason}`);
  const denoArgs = ['run', DENO_V8_FLAGS, '--allow-net', '--allow-read', '--allow-env', 'edge/deno.ts'];
  const v: Record<string, Variant> = {
    // What `npm run serve:node` runs, without npm's own start-up in front.
    'node-bundle': (port) => ({ cmd: process.execPath, args: ['scripts/serve-node.mjs', ...local(port)] }),
    // The same with V8's defaults for wasm, and with each of edge/wasm-files.ts's WASM_V8_FLAGS alone.
    'node-bundle, V8 defaults': (port) => ({ cmd: process.execPath, args: ['scripts/serve-node.mjs', ...local(port)], env: { FACET_WASM_V8_FLAGS: '' } }),
    ...Object.fromEntries(
      WASM_V8_FLAGS.map((flag) => [`node-bundle, only ${flag.replace(/=.*/, '')}`, (port: number) => ({ cmd: process.execPath, args: ['scripts/serve-node.mjs', ...local(port)], env: { FACET_WASM_V8_FLAGS: flag } })]),
    ),
    'node-tsx': (port) => ({ cmd: process.execPath, args: ['--import', 'tsx', 'edge/node.ts', ...local(port)] }),
  };
  if (bun.path) v.bun = (port) => ({ cmd: resolve(bun.path!), args: ['edge/bun.ts', ...local(port)] });
  if (deno.path) v.deno = (port) => ({ cmd: resolve(deno.path!), args: [...denoArgs, ...local(port)] });
  // Without the --v8-flags of `npm run serve:deno` (Deno ignores V8 flags set at run time).
  if (deno.path) v['deno, V8 defaults'] = (port) => ({ cmd: resolve(deno.path!), args: denoArgs.filter((a) => a !== DENO_V8_FLAGS).concat(local(port)) });
  // The serving runtime alone: workerd on the upload bundle, as Workers would run it.
  v['workerd serve'] = (port) => worker.workerdServe(port);
  // What `npm start` runs: wrangler bundles edge/worker.ts with esbuild, then starts workerd behind its proxy.
  v['wrangler dev'] = (port, extra) => ({
    cmd: process.execPath,
    args: [wrangler, 'dev', '--assets', modelsDir, '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(extra), '--log-level', 'warn'],
    env: WRANGLER_ENV,
  });
  if (before) {
    v['node-bundle (before)'] = (port) => ({ cmd: process.execPath, args: ['scripts/serve-node.mjs', ...local(port)], cwd: before });
    if (bun.path) v['bun (before)'] = (port) => ({ cmd: resolve(bun.path!), args: ['edge/bun.ts', ...local(port)], cwd: before });
    if (deno.path) v['deno (before)'] = (port) => ({ cmd: resolve(deno.path!), args: [...denoArgs, ...local(port)], cwd: before });
  }
  return only ? Object.fromEntries(Object.entries(v).filter(([k]) => only.some((o) => k.startsWith(o)))) : v;
}

export interface Sample {
  healthzMs: number;
  firstClassifyMs: number;
  marks: StartupMark[];
  /** With idleMs: the first classify request alone, sent idleMs after /healthz answered. */
  firstClassifyLatencyMs?: number;
  /** serve-node.mjs only: whether V8's code cache of the bundle was used, rejected or absent. */
  codeCache?: string;
}

async function coldStart(name: string, variant: Variant, subtask: string, lingerMs = 0, idleMs = 0): Promise<Sample> {
  const [port, extra] = [await freePort(), await freePort()];
  const { cmd, args, cwd, env } = variant(port, extra);
  const started = performance.now();
  // Its own process group, so that stopping it also stops what wrangler started.
  const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, FACET_API_KEY: '', FACET_TRACE_STARTUP: '1', NO_COLOR: '1' } });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  try {
    let healthzMs: number | undefined;
    while (healthzMs === undefined) {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}: ${output}`);
      if (performance.now() - started > 60_000) throw new Error(`${name}: no /healthz answer within 60 s: ${output}`);
      try {
        if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) healthzMs = performance.now() - started;
      } catch {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    if (idleMs > 0) await new Promise((r) => setTimeout(r, idleMs));
    const sent = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/v1/classify?subtask=${encodeURIComponent(subtask)}`, { method: 'POST', body, headers: { 'content-type': 'image/png' } });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`${name}: first classify answered ${res.status}`);
    const firstClassifyMs = performance.now() - started;
    const firstClassifyLatencyMs = idleMs > 0 ? performance.now() - sent : undefined;
    // The last marks are printed just before the answer is written; give the pipe a moment.
    await new Promise((r) => setTimeout(r, 20 + lingerMs));
    return { healthzMs, firstClassifyMs, firstClassifyLatencyMs, marks: parseStartupMarks(output), codeCache: /^facet-startup-code-cache (\w+)$/m.exec(output)?.[1] };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(-child.pid!, 'SIGTERM');
      await exited;
    }
  }
}

const round = (x: number) => (Number.isFinite(x) ? Math.round(x) : undefined);

/** Phases in the order they happen, with the model-specific marks named generically. */
export const PHASES = ['entry', 'modules-loaded', 'wasm-compiled', 'app-created', 'listening', 'ort-instantiated', 'ort-warmed', 'model-requested', 'model-verified', 'session-created', 'first-run'] as const;
const phaseOf = (mark: string) => mark.replace(/:.*$/, '');

export interface ColdStartRow {
  variant: string;
  healthzMs: number;
  firstClassifyMs: number;
  firstClassifyMinMs: number;
  /** With idleMs: median time of the first classify request alone. */
  firstClassifyLatencyMs?: number;
  /** The code-cache states seen (serve-node.mjs variants). */
  codeCache?: string;
  /** Median time of each phase mark, ms since the server's process start (absent on workerd). */
  phases: Record<string, number | undefined>;
}

/** Start every variant `runs` times, interleaved; medians per variant. */
export async function measureColdStarts(options: ColdStartOptions): Promise<{ subtask: string; rows: ColdStartRow[]; samples: Record<string, Sample[]> }> {
  const manifest = parseManifest(JSON.parse(readFileSync(join(options.modelsDir, 'manifest.json'), 'utf8')), options.modelsDir);
  const subtask = manifest.models.filter((m) => m.subtask).sort((a, b) => a.macs - b.macs)[0]!.subtask!;
  // Fresh bundles, so no measured start pays for a rebuild.
  await buildEdge();
  const worker = prebuiltWorker(options.modelsDir);
  const all = variants(options, worker);
  // One start that stays up past serve-node.mjs's code-cache write (3 s after it listens), so
  // the measured starts find the cache of the bundle just built, as every start after the first does.
  if (all['node-bundle']) await coldStart('node-bundle', all['node-bundle'], subtask, 4000);
  const samples = new Map(Object.keys(all).map((k) => [k, [] as Sample[]]));
  try {
    for (let i = 0; i < options.runs; i++) for (const [name, variant] of Object.entries(all)) samples.get(name)!.push(await coldStart(name, variant, subtask, 0, options.idleMs));
  } finally {
    worker.cleanup();
  }
  const rows = [...samples].map(([variant, s]) => {
    const phases: Record<string, number | undefined> = {};
    for (const p of PHASES) phases[p] = round(median(s.map((x) => x.marks.find((m) => phaseOf(m.phase) === p)?.ms).filter((x): x is number => x !== undefined)));
    return {
      variant,
      healthzMs: round(median(s.map((x) => x.healthzMs)))!,
      firstClassifyMs: round(median(s.map((x) => x.firstClassifyMs)))!,
      firstClassifyMinMs: round(Math.min(...s.map((x) => x.firstClassifyMs)))!,
      firstClassifyLatencyMs: options.idleMs ? round(median(s.map((x) => x.firstClassifyLatencyMs!))) : undefined,
      codeCache: [...new Set(s.map((x) => x.codeCache).filter(Boolean))].join('/') || undefined,
      phases,
    };
  });
  return { subtask, rows, samples: Object.fromEntries(samples) };
}

export function printColdStarts(rows: ColdStartRow[]): void {
  console.log('\nCold start: medians, ms from spawn (healthz, first classify), and phases inside the server, ms from its process start:');
  console.table(rows.map((r) => ({ variant: r.variant, healthz: r.healthzMs, 'first classify': r.firstClassifyMs, min: r.firstClassifyMinMs, '≤500': r.firstClassifyMs <= 500 ? 'yes' : 'no', ...(r.firstClassifyLatencyMs !== undefined ? { 'its latency': r.firstClassifyLatencyMs } : {}), 'code cache': r.codeCache, ...r.phases })));
  console.log('(V8 rejects the code cache under other V8 flags, so the ablation rows also pay the full bundle compile, ~30–40 ms.)');
  // The same as durations: what each phase added.
  console.log('Phase durations (ms; without a warm-up, "session" includes the initialisation of ORT on the first session):');
  console.table(
    rows
      .filter((r) => r.phases.entry !== undefined)
      .map((r) => {
        const p = r.phases as Record<(typeof PHASES)[number], number>;
        return {
          variant: r.variant,
          'to entry': p.entry,
          'app modules': p['modules-loaded'] - p.entry,
          'wasm compiled (from entry)': p['wasm-compiled'] - p.entry,
          'app created': p['app-created'] - Math.max(p['modules-loaded'], p['wasm-compiled']),
          listening: p.listening - p['app-created'],
          // With the warm-up (ModelPool.warmUp), ORT is instantiated and run once from app-created on,
          // and the first request's model waits in the queue behind it; without, ORT starts with that model.
          'ort instantiate': p['ort-instantiated'] - (p['ort-warmed'] !== undefined ? p['app-created'] : p['model-verified']),
          'warm-up run': p['ort-warmed'] !== undefined ? p['ort-warmed'] - p['ort-instantiated'] : undefined,
          // From listening: the bench's /healthz poll and request, then the classify request up to the engine (body, decode, and any wait for the warm-up).
          'requests to engine': p['model-requested'] - p.listening,
          'read+sha256': p['model-verified'] - p['model-requested'],
          session: p['session-created'] - Math.max(p['ort-instantiated'], p['model-verified'], p['ort-warmed'] ?? 0),
          'first run': p['first-run'] - p['session-created'],
        };
      }),
  );
  const befores = rows.filter((r) => r.variant.endsWith('(before)'));
  if (befores.length) {
    console.log('Now vs before (first classify, median):');
    console.table(
      befores.map((b) => {
        const now = rows.find((r) => r.variant === b.variant.replace(' (before)', ''))!;
        return { runtime: now.variant, beforeMs: b.firstClassifyMs, nowMs: now.firstClassifyMs, 'now/before': +(now.firstClassifyMs / b.firstClassifyMs).toFixed(2) };
      }),
    );
  }
  const w = rows.find((r) => r.variant === 'workerd serve');
  const wd = rows.find((r) => r.variant === 'wrangler dev');
  if (w && wd) console.log(`wrangler dev − workerd serve: ${wd.healthzMs - w.healthzMs} ms to /healthz, ${wd.firstClassifyMs - w.firstClassifyMs} ms to the first classify (wrangler's own start-up and bundling)`);
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('bench/edge-cold.ts')) {
  const argv = process.argv.slice(2);
  const arg = (name: string) => optionValue(argv, name);
  const modelsDir = resolve(arg('models') ?? DEFAULT_MODELS.find((d) => existsSync(`${d}/manifest.json`))!);
  const outPath = arg('out') ?? 'bench/results/edge-cold.json';
  const runs = Number(arg('runs') ?? 5);
  console.log(`bench:edge-cold: models ${modelsDir}; ${runs} runs each, interleaved; load average ${loadavg()[0]!.toFixed(2)} on ${cpus().length} CPUs (a shared machine: compare rows of one run, not runs)`);
  const idleMs = Number(arg('idle-ms') ?? 0);
  const measured = await measureColdStarts({ modelsDir, runs, before: arg('before') ? resolve(arg('before')!) : undefined, only: arg('only')?.split(','), idleMs });
  printColdStarts(measured.rows);
  const result = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadAverageAtEnd: loadavg()[0], modelsDir, runs, idleMs, ...measured };
  mkdirSync(dirname(outPath), { recursive: true });
  const tmp = `${outPath}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  writeSync(fd, JSON.stringify(result, null, 1) + '\n');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, outPath);
  console.log(`wrote ${outPath}`);
}
