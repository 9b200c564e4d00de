/**
 * The Node server runs with the memory settings that keep its RSS flat under load (issue 6;
 * edge/node.ts and scripts/serve-node.mjs say why): started as `npm run serve:node` starts it,
 * its environment has glibc's fixed mmap threshold, and after thousands of requests V8's young
 * generation is still the size it started with (2 × 1 MiB). With V8's defaults it grows to
 * 2 × 8 MiB or more in as many requests, which the control case shows on the same server. (The
 * old generation's sizing shows only over tens of thousands of requests: bench/load.ts.)
 */
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURE_MODELS, image } from './helpers.ts';
import { command, freePort, serveNodeScript } from './servers.ts';

const dir = mkdtempSync(join(tmpdir(), 'facet-node-memory-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Loaded into the server with --require: on exit, print its pid and V8's space sizes as one line.
// (NODE_OPTIONS reaches the bundle build serve-node.mjs may spawn first too; the pid tells them apart.)
const reporter = join(dir, 'report-heap.cjs');
writeFileSync(
  reporter,
  `const v8 = require('node:v8');
process.on('exit', () => {
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]));
  require('node:fs').writeSync(2, 'facet-heap-spaces ' + process.pid + ' ' + JSON.stringify(spaces) + '\\n');
});
`,
);

type Spaces = Record<string, { size: number; used: number }>;

/** Start the Node server as the tests do, serve `amount` classify requests at concurrency 32, stop it; its environment and V8 spaces at exit. */
async function serveAndReport(extraEnv: Record<string, string>, amount: number): Promise<{ environ: string[]; spaces: Spaces }> {
  const port = await freePort();
  const { cmd, args, env } = command('node', port, FIXTURE_MODELS, 0);
  const child = spawn(cmd, args, { env: { ...process.env, ...env, ...extraEnv, NODE_OPTIONS: `--require ${reporter}`, FACET_API_KEY: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise((r) => child.once('exit', r));
  try {
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; !(await fetch(`${url}/readyz`).then((r) => r.ok, () => false)); i++) {
      if (i > 600 || child.exitCode !== null) throw new Error(`the Node server did not get ready:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const environ = readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0');
    const result = await autocannon({ url: `${url}/v1/classify?subtask=shoes`, method: 'POST', body: Buffer.from(image('sneaker.png')), headers: { 'content-type': 'image/png' }, connections: 32, amount });
    expect(result.non2xx + result.errors).toBe(0);
    child.kill('SIGTERM');
    await exited;
    const line = new RegExp(`facet-heap-spaces ${child.pid} (.*)`).exec(log);
    if (!line) throw new Error(`no heap report from the server:\n${log}`);
    return { environ, spaces: JSON.parse(line[1]!) as Spaces };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

const MiB = 2 ** 20;

describe('Node server memory settings', () => {
  it('npm run serve:node sets glibc’s mmap threshold, and the tests start the server the same way', () => {
    const script = serveNodeScript();
    expect(script.env).toEqual({ MALLOC_MMAP_THRESHOLD_: '131072' });
    expect(script.args[0]).toBe('scripts/serve-node.mjs');
  });

  it('keeps the young generation at its starting size under load', async () => {
    const { environ, spaces } = await serveAndReport({}, 4000);
    expect(environ).toContain('MALLOC_MMAP_THRESHOLD_=131072');
    // Two semi-spaces of 1 MiB (V8 reports the new space's committed size).
    expect(spaces.new_space!.size, JSON.stringify(spaces)).toBeLessThanOrEqual(2 * MiB);
  });

  it('control: with V8’s default heap sizing the same load grows the young generation', async () => {
    const { spaces } = await serveAndReport({ FACET_NODE_HEAP_V8_FLAGS: '' }, 4000);
    expect(spaces.new_space!.size, JSON.stringify(spaces)).toBeGreaterThan(4 * MiB);
  });
});
