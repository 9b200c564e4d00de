/** Start the edge service for real on each runtime (tests and benchmarks share this). */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { WRANGLER_ENV } from '../../edge/wrangler-env.ts';

export type RuntimeName = 'node' | 'bun' | 'deno' | 'workerd';

export interface RunningServer {
  runtime: RuntimeName;
  url: string;
  child: ChildProcess;
  /** Milliseconds from spawn to the first successful /healthz answer. */
  startMs: number;
  log: () => string;
  stop: () => Promise<void>;
}

const require = createRequire(import.meta.url);

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function works(binary: string): boolean {
  if (!existsSync(binary) || statSync(binary).size < 1_000_000) return false;
  return spawnSync(binary, ['--version'], { timeout: 20_000 }).status === 0;
}

/** A runnable binary for bun or deno from node_modules, or why there is none. */
export function runtimeBinary(name: 'bun' | 'deno'): { path?: string; reason?: string } {
  const candidates =
    name === 'bun'
      ? ['node_modules/.bin/bun', 'node_modules/bun/bin/bun.exe', 'node_modules/@oven/bun-linux-x64/bin/bun', 'node_modules/@oven/bun-linux-x64-baseline/bin/bun']
      : ['node_modules/@deno/linux-x64-glibc/deno', 'node_modules/.bin/deno'];
  for (const c of candidates) if (works(c)) return { path: c };
  return { reason: `no working ${name} binary in node_modules (looked at ${candidates.join(', ')}); run npm install with its install script approved` };
}

export interface PrebuiltWorker {
  /** A wrangler config that serves the prebuilt bundle unbundled (for `wrangler dev -c`). */
  config: string;
  /** `workerd serve` on the same bundle, without wrangler: the serving runtime alone. */
  workerdServe: (port: number) => { cmd: string; args: string[] };
  cleanup: () => void;
}

/**
 * Build the Worker once (`wrangler deploy --dry-run`) and a config that serves that bundle
 * unbundled. wrangler dev otherwise watches the sources and restarts the worker, mid-request,
 * whenever a file under edge/ or shared/ changes; this way the test serves exactly the upload.
 */
export function prebuiltWorker(modelsDir: string): PrebuiltWorker {
  const dir = mkdtempSync(join(tmpdir(), 'facet-worker-'));
  execFileSync(process.execPath, [require.resolve('wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', join(dir, 'dist'), '--assets', modelsDir], {
    env: { ...process.env, ...WRANGLER_ENV },
    stdio: 'ignore',
    timeout: 120_000,
  });
  const config = join(dir, 'wrangler.toml');
  writeFileSync(
    config,
    [
      'name = "facet-edge-test"',
      'main = "dist/worker.js"',
      'compatibility_date = "2025-09-01"',
      'no_bundle = true',
      'find_additional_modules = true',
      'base_dir = "dist"',
      'rules = [{ type = "CompiledWasm", globs = ["**/*.wasm"], fallthrough = true }]',
      '[assets]',
      `directory = ${JSON.stringify(resolve(modelsDir))}`,
      'binding = "ASSETS"',
      'run_worker_first = true',
    ].join('\n') + '\n',
  );
  const workerdServe = (port: number) => {
    // The upload's modules as workerd modules (the .wasm ones precompiled, as CompiledWasm
    // gives them on Workers), and ASSETS as a read-only disk service over the models folder:
    // it answers GET /<file> with the file, which is all FetchModelStore asks of it.
    const files = readdirSync(join(dir, 'dist')).filter((f) => f.endsWith('.js') || f.endsWith('.wasm'));
    const modules = ['worker.js', ...files.filter((f) => f !== 'worker.js')].map((f) => `(name = ${JSON.stringify(f)}, ${f.endsWith('.wasm') ? 'wasm' : 'esModule'} = embed ${JSON.stringify(`dist/${f}`)})`);
    const capnp = join(dir, `workerd-${port}.capnp`);
    writeFileSync(
      capnp,
      `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .facet), (name = "assets", disk = (path = ${JSON.stringify(resolve(modelsDir))}, writable = false))],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const facet :Workerd.Worker = (
  modules = [${modules.join(', ')}],
  compatibilityDate = "2025-09-01",
  bindings = [(name = "ASSETS", service = "assets")],
);
`,
    );
    return { cmd: workerdBinary(), args: ['serve', capnp] };
  };
  return { config, workerdServe, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The workerd binary wrangler runs (wrangler → miniflare → workerd). */
export function workerdBinary(): string {
  const miniflare = createRequire(require.resolve('wrangler/package.json'));
  const workerd = createRequire(miniflare.resolve('miniflare'));
  return resolve(workerd.resolve('workerd/package.json'), '..', 'bin', 'workerd');
}

/** The V8 flag `npm run serve:deno` passes (Deno ignores flags set at run time). */
export const DENO_V8_FLAGS = '--v8-flags=--wasm-tiering-budget=18000000';

/**
 * package.json's `serve:node` script, split into its leading `NAME=value` environment and the
 * arguments after `node`, so that the tests and benchmarks start the Node server exactly as
 * `npm run serve:node` does.
 */
export function serveNodeScript(): { env: Record<string, string>; args: string[] } {
  const script: string = JSON.parse(readFileSync(resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../package.json'), 'utf8')).scripts['serve:node'];
  const words = script.trim().split(/\s+/);
  const env: Record<string, string> = {};
  for (let m; (m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(words[0] ?? '')); words.shift()) env[m[1]!] = m[2]!;
  if (words.shift() !== 'node') throw new Error(`package.json serve:node is not "[NAME=value ...] node ...": ${script}`);
  return { env, args: words };
}

export function command(runtime: RuntimeName, port: number, modelsDir: string, extraPort: number, workerConfig?: string): { cmd: string; args: string[]; env?: Record<string, string> } {
  switch (runtime) {
    case 'node': {
      // What `npm run serve:node` runs: the esbuild bundle with plain node (rebuilt first if
      // stale), with the script's environment (MALLOC_MMAP_THRESHOLD_).
      const script = serveNodeScript();
      return { cmd: process.execPath, args: [...script.args, '--port', String(port), '--models', modelsDir], env: script.env };
    }
    case 'bun':
      return { cmd: runtimeBinary('bun').path!, args: ['edge/bun.ts', '--port', String(port), '--models', modelsDir] };
    case 'deno':
      // As `npm run serve:deno` runs it (edge/deno.ts says why the V8 flag).
      return { cmd: runtimeBinary('deno').path!, args: ['run', DENO_V8_FLAGS, '--allow-net', '--allow-read', '--allow-env', 'edge/deno.ts', '--port', String(port), '--models', modelsDir] };
    case 'workerd':
      return {
        cmd: process.execPath,
        args: [require.resolve('wrangler/bin/wrangler.js'), 'dev', ...(workerConfig ? ['-c', workerConfig] : ['--assets', modelsDir]), '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(extraPort), '--log-level', process.env.FACET_WRANGLER_LOG ?? 'warn'],
        // As npm start: no Request.cf fetch, which would time a network call into startup.
        env: WRANGLER_ENV,
      };
  }
}

/**
 * Start a server and wait for /healthz. With `ready`, also wait for /readyz (every model loaded):
 * wrangler dev can reload its worker once just after it first answers, and a request caught
 * in that reload gets "Your worker restarted mid-request".
 */
export async function startServer(runtime: RuntimeName, modelsDir: string, options: { ready?: boolean; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RunningServer> {
  const timeoutMs = options.timeoutMs ?? 90_000;
  const [port, extraPort] = [await freePort(), await freePort()];
  const worker = runtime === 'workerd' ? prebuiltWorker(modelsDir) : undefined;
  const { cmd, args, env } = command(runtime, port, modelsDir, extraPort, worker?.config);
  const started = performance.now();
  const child = spawn(cmd, args, { env: { ...process.env, ...env, FACET_API_KEY: '', NO_COLOR: '1', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return worker?.cleanup();
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    worker?.cleanup();
  };
  while (performance.now() - started < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`${runtime} server exited with ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) {
        const startMs = performance.now() - started;
        if (options.ready) await waitReady(url, started + timeoutMs);
        return { runtime, url, child, startMs, log: () => output, stop };
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`${runtime} server did not answer /healthz within ${timeoutMs} ms:\n${output}`);
}

export async function waitReady(url: string, deadline: number): Promise<void> {
  let stable = 0;
  while (performance.now() < deadline) {
    const res = await fetch(`${url}/readyz`).catch(() => undefined);
    await res?.body?.cancel();
    // Three answers in a row, so a reload right after the first does not slip through.
    stable = res?.ok ? stable + 1 : 0;
    if (stable === 3) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url}/readyz did not answer 200`);
}

/**
 * The process that runs the app: the server itself, or under wrangler dev the workerd that runs
 * the Worker. wrangler starts two workerd processes: a proxy listening on our port, and the
 * runtime of the Worker (listening on an ephemeral port); the second is the one we want.
 */
export function servingPid(server: RunningServer): number {
  if (server.runtime !== 'workerd') return server.child.pid!;
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,comm=,args='], { encoding: 'utf8' });
  const rows = out.trim().split('\n').map((l) => {
    const [pid, ppid, comm, ...args] = l.trim().split(/\s+/);
    return { pid: pid!, ppid: ppid!, comm: comm!, args: args.join(' ') };
  });
  const descendants = new Set([String(server.child.pid)]);
  for (let changed = true; changed; ) {
    changed = false;
    for (const r of rows) if (descendants.has(r.ppid) && !descendants.has(r.pid)) (descendants.add(r.pid), (changed = true));
  }
  const port = new URL(server.url).port;
  const workers = rows.filter((r) => descendants.has(r.pid) && r.comm === 'workerd');
  const runtime = workers.find((r) => !r.args.includes(`entry=127.0.0.1:${port} `) && !r.args.endsWith(`entry=127.0.0.1:${port}`));
  if (!runtime) throw new Error(`cannot tell the Worker's workerd among ${workers.length} workerd processes under wrangler`);
  return Number(runtime.pid);
}

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** User + system CPU milliseconds a process has used (Linux /proc; clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
