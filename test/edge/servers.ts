/** Start the edge service for real on each runtime (tests and benchmarks share this). */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';

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

export function command(runtime: RuntimeName, port: number, modelsDir: string, extraPort: number): { cmd: string; args: string[]; env?: Record<string, string> } {
  switch (runtime) {
    case 'node':
      return { cmd: process.execPath, args: ['--import', 'tsx', 'edge/node.ts', '--port', String(port), '--models', modelsDir] };
    case 'bun':
      return { cmd: runtimeBinary('bun').path!, args: ['edge/bun.ts', '--port', String(port), '--models', modelsDir] };
    case 'deno':
      return { cmd: runtimeBinary('deno').path!, args: ['run', '--allow-net', '--allow-read', '--allow-env', 'edge/deno.ts', '--port', String(port), '--models', modelsDir] };
    case 'workerd':
      return {
        cmd: process.execPath,
        args: [require.resolve('wrangler/bin/wrangler.js'), 'dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(extraPort), '--assets', modelsDir, '--log-level', 'warn'],
        env: { WRANGLER_SEND_METRICS: 'false' },
      };
  }
}

export async function startServer(runtime: RuntimeName, modelsDir: string, timeoutMs = 90_000): Promise<RunningServer> {
  const [port, extraPort] = [await freePort(), await freePort()];
  const { cmd, args, env } = command(runtime, port, modelsDir, extraPort);
  const started = performance.now();
  const child = spawn(cmd, args, { env: { ...process.env, ...env, FACET_API_KEY: '', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  while (performance.now() - started < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`${runtime} server exited with ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) return { runtime, url, child, startMs: performance.now() - started, log: () => output, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`${runtime} server did not answer /healthz within ${timeoutMs} ms:\n${output}`);
}
