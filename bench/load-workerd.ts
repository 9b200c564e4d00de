/**
 * Helpers for the load run against workerd (bench/load.ts, bench/load-probe.ts): serve our Worker
 * or a trivial one under `wrangler dev` or under `workerd serve` directly (the same workerd binary
 * wrangler uses, without wrangler, its proxy or miniflare), list the processes of the tree with
 * their resident memory, and fire autocannon requests.
 */
import type autocannon from 'autocannon';
import { fixedRequests } from './fixed-requests.ts';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Manifest } from '../shared/manifest.ts';
import { WRANGLER_ENV } from '../edge/wrangler-env.ts';
import { pngHeaderClaiming } from '../test/edge/helpers.ts';
import { freePort } from '../test/edge/servers.ts';

const require = createRequire(import.meta.url);

/** `facet`: our Worker (the `wrangler deploy --dry-run` bundle). `trivial`: reads the body, answers JSON; no ORT, no Hono. */
export type WorkerKind = 'facet' | 'trivial';
/** `wrangler`: `wrangler dev` (what `npm start` runs). `workerd`: `workerd serve` on the same bundle, nothing else. */
export type WorkerHost = 'wrangler' | 'workerd';

const TRIVIAL_WORKER = `// Reads the whole body (as our Worker does) and answers a small JSON: the baseline of what
// workerd and wrangler dev cost per request without our code.
export default {
  async fetch(request) {
    const body = request.body ? await request.arrayBuffer() : new ArrayBuffer(0);
    const url = new URL(request.url);
    return Response.json({ path: url.pathname, bytes: body.byteLength });
  },
};
`;

const img = (n: string) => readFileSync(`test/fixtures/edge/images/${n}`);

/**
 * The load run's good and bad requests, cycled by every connection (expected statuses from our
 * app in the comments). The subtask is the manifest's one that covers sneakers (shoes in the
 * fixtures, footwear in the shipped models), so the good requests stay good on either.
 */
export function loadRequests(manifest: Manifest): autocannon.Request[] {
  const subtask = (manifest.models.find((m) => m.subtask && m.classes.some((c) => c.label === 'Sneaker')) ?? manifest.models.find((m) => m.subtask))?.subtask;
  if (!subtask) throw new Error('the load run needs a manifest with at least one subtask model');
  return [
    { method: 'POST', path: `/v1/classify?subtask=${encodeURIComponent(subtask)}`, headers: { 'content-type': 'image/png' }, body: img('sneaker.png') }, // 200
    { method: 'POST', path: '/v1/classify?classes=Shirt,Coat', headers: { 'content-type': 'image/png' }, body: img('shirt.png') }, // 200
    { method: 'POST', path: '/v1/classify', headers: { 'content-type': 'image/jpeg' }, body: img('sneaker.jpg') }, // 200
    { method: 'POST', path: '/v1/classify', headers: { 'content-type': 'image/png' }, body: 'this is text, not a PNG' }, // 400
    { method: 'POST', path: '/v1/classify?classes=Hat', headers: { 'content-type': 'image/png' }, body: img('shirt.png') }, // 400
    { method: 'POST', path: '/v1/classify?top_k=0', headers: { 'content-type': 'image/png' }, body: img('shirt.png') }, // 422
    { method: 'POST', path: '/v1/classify', headers: { 'content-type': 'image/png' }, body: Buffer.from(pngHeaderClaiming(50_000, 50_000)) }, // 422
    { method: 'POST', path: '/v1/classify', headers: { 'content-type': 'text/plain' }, body: 'x' }, // 415
    { method: 'POST', path: '/v1/classify', headers: { 'content-type': 'application/json' }, body: '{"image": "@@@"}' }, // 400
    { method: 'GET', path: '/v1/models' }, // 200
  ];
}

export interface Fired {
  result: autocannon.Result;
  /** Completed requests over the time to the last response (bench/fixed-requests.ts). */
  requestsPerSec: number;
  statuses: Map<number, number>;
  /** Connection errors plus timeouts. */
  dropped: number;
}

export async function fire(url: string, amount: number, requests: autocannon.Request[], connections: number): Promise<Fired> {
  const statuses = new Map<number, number>();
  const { result, requestsPerSec } = await fixedRequests({ url, connections, amount, requests, timeout: 30 }, (status) => statuses.set(status, (statuses.get(status) ?? 0) + 1));
  return { result, requestsPerSec, statuses, dropped: result.errors + result.timeouts };
}

export interface TreeProcess {
  pid: number;
  ppid: number;
  /** `wrangler` (its Node process), `proxy` (the workerd that listens on the public port), `runtime` (the workerd that runs the Worker), `workerd` (workerd serve, no wrangler). */
  role: 'wrangler' | 'proxy' | 'runtime' | 'workerd' | 'other';
  /** The executable's name (ps comm). */
  comm: string;
  rssBytes: number;
}

export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Every process under (and including) root, with its role and RSS. */
export function processTree(rootPid: number, publicPort?: number): TreeProcess[] {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,comm=,args='], { encoding: 'utf8' });
  const rows = out.trim().split('\n').map((l) => {
    const [pid, ppid, comm, ...args] = l.trim().split(/\s+/);
    return { pid: Number(pid), ppid: Number(ppid), comm: comm!, args: args.join(' ') };
  });
  const inTree = new Set([rootPid]);
  for (let changed = true; changed; ) {
    changed = false;
    for (const r of rows) if (inTree.has(r.ppid) && !inTree.has(r.pid)) (inTree.add(r.pid), (changed = true));
  }
  return rows
    .filter((r) => inTree.has(r.pid))
    .map((r) => {
      let role: TreeProcess['role'] = 'other';
      if (r.comm === 'node') role = 'wrangler';
      else if (r.comm === 'workerd') {
        const hasWrangler = rows.some((x) => x.pid === rootPid && x.comm === 'node');
        if (!hasWrangler) role = 'workerd';
        else role = publicPort !== undefined && r.args.includes(`127.0.0.1:${publicPort}`) ? 'proxy' : 'runtime';
      }
      return { pid: r.pid, ppid: r.ppid, role, comm: r.comm, rssBytes: rssOf(r.pid) };
    });
}

export interface RunningWorker {
  url: string;
  /** Chrome DevTools protocol port: workerd's own, or wrangler dev's inspector proxy. */
  inspectorPort: number;
  rootPid: number;
  host: WorkerHost;
  worker: WorkerKind;
  /** The processes now, with their roles and RSS. */
  tree: () => TreeProcess[];
  log: () => string;
  stop: () => Promise<void>;
}

/** Bundle our Worker as it is uploaded (`wrangler deploy --dry-run`), or write the trivial one. */
function buildBundle(worker: WorkerKind, modelsDir: string, dir: string): { main: string; modules: string[] } {
  const dist = join(dir, 'dist');
  mkdirSync(dist, { recursive: true });
  if (worker === 'trivial') {
    writeFileSync(join(dist, 'worker.js'), TRIVIAL_WORKER);
    return { main: 'worker.js', modules: ['worker.js'] };
  }
  execFileSync(process.execPath, [require.resolve('wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', dist, '--assets', modelsDir], {
    env: { ...process.env, ...WRANGLER_ENV },
    stdio: 'ignore',
    timeout: 120_000,
  });
  const modules = readdirSync(dist).filter((f) => f.endsWith('.js') || f.endsWith('.wasm'));
  return { main: 'worker.js', modules };
}

function wranglerConfig(dir: string, modelsDir: string): string {
  const config = join(dir, 'wrangler.toml');
  const lines = ['name = "facet-load"', 'main = "dist/worker.js"', 'compatibility_date = "2025-09-01"', 'no_bundle = true', 'find_additional_modules = true', 'base_dir = "dist"'];
  // The trivial Worker gets the same assets config, so wrangler puts the same router in front of it.
  {
    lines.push('rules = [{ type = "CompiledWasm", globs = ["**/*.wasm"], fallthrough = true }]', '[assets]', `directory = ${JSON.stringify(resolve(modelsDir))}`, 'binding = "ASSETS"', 'run_worker_first = true');
  }
  writeFileSync(config, lines.join('\n') + '\n');
  return config;
}

/** A workerd config: the bundle's modules embedded, and ASSETS bound to a read-only disk service over the models folder. */
function workerdConfig(dir: string, modelsDir: string, bundle: { main: string; modules: string[] }, port: number, worker: WorkerKind, v8Flags: string[]): string {
  const modules = [bundle.main, ...bundle.modules.filter((m) => m !== bundle.main)].map((m) =>
    m.endsWith('.wasm') ? `(name = ${JSON.stringify(m)}, wasm = embed ${JSON.stringify(`dist/${m}`)})` : `(name = ${JSON.stringify(m)}, esModule = embed ${JSON.stringify(`dist/${m}`)})`,
  );
  const services = ['(name = "main", worker = .worker)'];
  const bindings: string[] = [];
  if (worker === 'facet') {
    services.push(`(name = "assets", disk = (path = ${JSON.stringify(resolve(modelsDir))}, writable = false))`);
    bindings.push('(name = "ASSETS", service = "assets")');
  }
  const text = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [${services.join(', ')}],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
  v8Flags = ${JSON.stringify(v8Flags)},
);
const worker :Workerd.Worker = (
  modules = [${modules.join(', ')}],
  compatibilityDate = "2025-09-01",
  bindings = [${bindings.join(', ')}],
);
`;
  const path = join(dir, 'config.capnp');
  writeFileSync(path, text);
  return path;
}

export function workerdBinary(): string {
  // wrangler brings workerd through miniflare; resolve it from there so both hosts run the same binary.
  const miniflare = createRequire(require.resolve('wrangler/package.json'));
  const workerdPkg = createRequire(miniflare.resolve('miniflare'));
  return resolve(workerdPkg.resolve('workerd/package.json'), '..', 'bin', 'workerd');
}

export async function startWorker(options: { worker: WorkerKind; host: WorkerHost; modelsDir: string; extraArgs?: string[]; v8Flags?: string[]; timeoutMs?: number }): Promise<RunningWorker> {
  const { worker, host, modelsDir } = options;
  const dir = mkdtempSync(join(tmpdir(), `facet-load-${worker}-`));
  const bundle = buildBundle(worker, modelsDir, dir);
  const port = await freePort();
  const inspector = await freePort();
  let cmd: string;
  let args: string[];
  if (host === 'wrangler') {
    cmd = process.execPath;
    args = [require.resolve('wrangler/bin/wrangler.js'), 'dev', '-c', wranglerConfig(dir, modelsDir), '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector), ...(options.extraArgs?.includes('--log-level') ? [] : ['--log-level', 'warn']), ...(options.extraArgs ?? [])];
  } else {
    cmd = workerdBinary();
    args = ['serve', workerdConfig(dir, modelsDir, bundle, port, worker, options.v8Flags ?? []), '--experimental', `--inspector-addr=127.0.0.1:${inspector}`, ...(options.extraArgs ?? [])];
  }
  const child = spawn(cmd, args, { cwd: dir, env: { ...process.env, ...WRANGLER_ENV, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = performance.now() + (options.timeoutMs ?? 90_000);
  // Ready: three 200s from /readyz in a row (our Worker then has every model loaded; wrangler
  // dev may reload the worker once just after it first answers).
  let stable = 0;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`${host} (${worker}) exited with ${child.exitCode}:\n${output}`);
    }
    const res = await fetch(`${url}/readyz`).catch(() => undefined);
    await res?.body?.cancel();
    stable = res?.ok ? stable + 1 : 0;
    if (stable === 3) return { url, inspectorPort: inspector, rootPid: child.pid!, host, worker, tree: () => processTree(child.pid!, port), log: () => output, stop };
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`${host} (${worker}) did not answer ${url}/readyz within the deadline:\n${output}`);
}

export interface IsolateHeap {
  target: string;
  /** V8 heap in use and allocated, after a full garbage collection. */
  usedBytes: number;
  totalBytes: number;
}

/**
 * Force a full garbage collection in every isolate the inspector at `inspectorPort` lists
 * (Chrome DevTools protocol: HeapProfiler.collectGarbage), then read each isolate's heap
 * (Runtime.getHeapUsage). Memory still held after this is reachable, not garbage waiting.
 */
export async function collectGarbage(inspectorPort: number, nudgeUrl?: string): Promise<IsolateHeap[]> {
  const { default: WebSocket } = await import('ws');
  const list = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as { id?: string; title?: string; url?: string; webSocketDebuggerUrl?: string }[];
  const heaps: IsolateHeap[] = [];
  for (const t of list) {
    if (!t.webSocketDebuggerUrl) continue;
    const ws = new WebSocket(t.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    let id = 0;
    const pending = new Map<number, (v: any) => void>();
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data));
      if (msg.id !== undefined) pending.get(msg.id)?.(msg);
    });
    const send = (method: string, params: object = {}) =>
      new Promise<any>((resolve, reject) => {
        const n = ++id;
        const timer = setTimeout(() => reject(new Error(`${method}: no answer from ${t.webSocketDebuggerUrl}`)), 30_000);
        pending.set(n, (msg) => (clearTimeout(timer), msg.error ? reject(new Error(`${method}: ${JSON.stringify(msg.error)}`)) : resolve(msg.result)));
        ws.send(JSON.stringify({ id: n, method, params }));
      });
    try {
      await send('HeapProfiler.enable');
      // V8 runs the collection as a task on the isolate's thread; workerd runs such tasks when
      // the isolate next does work, so a request nudges it along.
      const collected = send('HeapProfiler.collectGarbage');
      if (nudgeUrl) for (let i = 0; i < 20 && !(await Promise.race([collected.then(() => true), new Promise((r) => setTimeout(() => r(false), 100))])); i++) await (await fetch(`${nudgeUrl}/healthz`)).arrayBuffer();
      await collected;
      const usage = await send('Runtime.getHeapUsage');
      heaps.push({ target: t.title ?? t.url ?? t.id ?? '?', usedBytes: usage.usedSize, totalBytes: usage.totalSize });
    } finally {
      ws.close();
    }
  }
  return heaps;
}
