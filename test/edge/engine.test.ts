/**
 * Startup marks (edge/startup.ts) taken by the engine and the entries, which bench/edge-cold.ts
 * reads to break a cold start down: the engine's marks come once per model, in the order the
 * work happens; the Node server prints them on stderr with FACET_TRACE_STARTUP=1, in order.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ModelPool } from '../../edge/engine.ts';
import { configureOrt } from '../../edge/ort.ts';
import { parseStartupMarks, startupMarks } from '../../edge/startup.ts';
import { loadManifest } from '../../edge/store.ts';
import { FsModelStore } from '../../edge/store-fs.ts';
import { FIXTURE_MODELS, fixtureWasm, image, servingUrl } from './helpers.ts';

describe('startup marks', () => {
  it('marks the first request, verified read, session and run of each model once, in that order', async () => {
    const ort = configureOrt((await fixtureWasm()).ort);
    const store = new FsModelStore(FIXTURE_MODELS);
    const manifest = await loadManifest(store);
    const pool = new ModelPool(ort, store, manifest);
    const entry = manifest.models.find((m) => m.id === 'tops')!;
    const x = new Float32Array(784).fill(0.25);
    for (let i = 0; i < 3; i++) await pool.run(entry, x, 1);
    const phases = startupMarks().map((m) => m.phase);
    const tops = phases.filter((p) => p.endsWith(':tops'));
    expect(tops).toEqual(['model-requested:tops', 'model-verified:tops', 'session-created:tops', 'first-run:tops']);
    // ORT is instantiated once per process, before its first session is complete.
    expect(phases.filter((p) => p === 'ort-instantiated')).toHaveLength(1);
    expect(phases.indexOf('ort-instantiated')).toBeLessThan(phases.indexOf(phases.find((p) => p.startsWith('session-created:'))!));
    const ms = startupMarks().map((m) => m.ms);
    expect(ms).toEqual([...ms].sort((a, b) => a - b));
  });

  it('parses the marks a server prints, ignoring other output', () => {
    const output = 'facet-startup entry 12.5\nfacet edge (node) serving x\nfacet-startup first-run:tops 480.0\nfacet-startup broken\n';
    expect(parseStartupMarks(output)).toEqual([
      { phase: 'entry', ms: 12.5 },
      { phase: 'first-run:tops', ms: 480 },
    ]);
  });

  it('the Node server prints every phase of its cold start in order with FACET_TRACE_STARTUP=1, warming onnxruntime up before the first request', async () => {
    const child = spawn(process.execPath, ['scripts/serve-node.mjs', '--port', '0', '--models', FIXTURE_MODELS], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FACET_API_KEY: '', FACET_TRACE_STARTUP: '1', NODE_OPTIONS: '' },
    });
    const served = servingUrl(child);
    try {
      const url = await served.url;
      const res = await fetch(`${url}/v1/classify?subtask=tops`, { method: 'POST', body: image('shirt.png'), headers: { 'content-type': 'image/png' } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      await new Promise((r) => setTimeout(r, 50));
      const output = served.output();
      const marks = parseStartupMarks(output);
      // serve-node.mjs says what became of the bundle's code cache.
      expect(output).toMatch(/^facet-startup-code-cache (used|rejected|none)$/m);
      const at = (phase: string) => marks.find((m) => m.phase === phase)?.ms;
      // Two chains: serving, and onnxruntime's warm-up, which starts once the app is created and
      // runs while the server starts listening; the first request's session is queued after it.
      const chains = [
        ['entry', 'modules-loaded', 'app-created', 'listening', 'model-requested:tops', 'model-verified:tops', 'session-created:tops', 'first-run:tops'],
        ['app-created', 'ort-instantiated', 'ort-warmed', 'model-requested:tops'],
      ];
      for (const order of chains) {
        for (const p of order) expect(at(p), `${p} in:\n${output}`).toBeGreaterThan(0);
        const times = order.map((p) => at(p)!);
        expect(times, order.join(' < ')).toEqual([...times].sort((a, b) => a - b));
      }
      expect(marks.filter((m) => m.phase === 'ort-instantiated')).toHaveLength(1);
      // The app needs the compiled wasm, so the compile ended before the app was created.
      expect(at('wasm-compiled')!).toBeLessThanOrEqual(at('app-created')!);
      // No other model was touched on the way to the first answer.
      expect(marks.filter((m) => m.phase.startsWith('session-created:')).map((m) => m.phase)).toEqual(['session-created:tops']);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }, 60_000);
});
