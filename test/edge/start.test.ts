/**
 * `npm start`, the README's serve command, as a newcomer runs it: edge/wrangler.ts starting
 * wrangler dev on the models folder. The other workerd tests start wrangler themselves, so
 * only this one covers the script in between.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FIXTURE_MODELS } from './helpers.ts';
import { freePort, waitReady } from './servers.ts';

describe('npm start', () => {
  it('serves the models folder on the port asked for, answers the README curl, and makes no outbound request for Request.cf', async () => {
    const [port, inspector] = [await freePort(), await freePort()];
    // Not vitest's NODE_ENV=test, under which miniflare never fetches Request.cf: a user's shell has none.
    const { NODE_ENV: _, ...env } = process.env;
    // detached: npm → tsx → wrangler → workerd; the whole group is stopped at the end.
    const child = spawn('npm', ['start', '--silent', '--', '--port', String(port), '--inspector-port', String(inspector)], {
      // debug: miniflare logs the Request.cf fetch either way (fetched, or fell back after a failure).
      env: { ...env, FACET_MODELS: FIXTURE_MODELS, WRANGLER_LOG: 'debug', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const url = `http://127.0.0.1:${port}`;
    try {
      // Three ready answers in a row, as startServer waits: wrangler dev may reload once just after its first.
      await waitReady(url, performance.now() + 90_000).catch((err: Error) => {
        throw new Error(`npm start: ${err.message} (exit code ${child.exitCode}):\n${output}`);
      });

      const res = await fetch(`${url}/v1/classify?subtask=tops`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: readFileSync('examples/shirt.png') });
      const body = (await res.json()) as { model: { id: string }; predictions: { label: string; score: number }[] };
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body.model.id).toBe('tops');
      expect(body.predictions.map((p) => p.label).sort()).toEqual(['Coat', 'Pullover', 'Shirt', 'T-shirt/top']);

      // The app never reads request.cf: fetching it is the dev server's only outbound request,
      // which offline prints a stack trace at every start.
      expect(output.split('\n').filter((line) => line.includes('Request.cf'))).toEqual([]);
      expect(output).not.toContain('serving the test fixture models');
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(-child.pid!, 'SIGTERM');
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  });
});
