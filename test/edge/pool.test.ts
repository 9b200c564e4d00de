import { describe, expect, it } from 'vitest';
import { ModelPool } from '../../edge/engine.ts';
import { configureOrt, ortHeapBytes } from '../../edge/ort.ts';
import { loadManifest } from '../../edge/store.ts';
import { FsModelStore } from '../../edge/store-fs.ts';
import { FIXTURE_MODELS, fixtureWasm } from './helpers.ts';

describe('ModelPool memory budget', () => {
  it('evicts the least recently used session when the next one does not fit, and reloads on demand', async () => {
    const ort = configureOrt((await fixtureWasm()).ort);
    const store = new FsModelStore(FIXTURE_MODELS);
    const manifest = await loadManifest(store);
    // Each fixture model is estimated at ~1 MiB until measured: room for one at a time.
    const pool = new ModelPool(ort, store, manifest, 1.5 * 2 ** 20);
    const model = (id: string) => manifest.models.find((m) => m.id === id)!;
    const state = () => Object.fromEntries(pool.states().map((s) => [s.id, s.state]));
    await pool.session(model('full'));
    expect(state()).toEqual({ full: 'ready', tops: 'unloaded', shoes: 'unloaded' });
    await pool.session(model('tops'));
    expect(state()).toEqual({ full: 'unloaded', tops: 'ready', shoes: 'unloaded' });
    await pool.session(model('shoes'));
    expect(state()).toEqual({ full: 'unloaded', tops: 'unloaded', shoes: 'ready' });
    const x = new Float32Array(784).fill(0.5);
    const [row] = await pool.run(manifest.models[0]!, x, 1);
    expect(row).toHaveLength(10);
    expect(state()).toEqual({ full: 'ready', tops: 'unloaded', shoes: 'unloaded' });
    expect(pool.inferences.get('full')).toBe(1);
    expect(ortHeapBytes()).toBeGreaterThan(0);
  });

  it('keeps every session when the budget allows', async () => {
    const ort = configureOrt((await fixtureWasm()).ort);
    const store = new FsModelStore(FIXTURE_MODELS);
    const manifest = await loadManifest(store);
    const pool = new ModelPool(ort, store, manifest);
    for (const entry of manifest.models) await pool.session(entry);
    expect(pool.states().map((s) => s.state)).toEqual(['ready', 'ready', 'ready']);
    // The same session object comes back: cached, not recreated.
    const tops = manifest.models.find((m) => m.id === 'tops')!;
    expect(await pool.session(tops)).toBe(await pool.session(tops));
  });
});
