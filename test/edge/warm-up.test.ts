/**
 * onnxruntime's warm-up (ModelPool.warmUp): the servers run a tiny model once at start-up so
 * that the first request does not pay for ORT's one-time set-up. Its own file, so that ORT is
 * instantiated by the warm-up here and not by an earlier test (vitest isolates files).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { onnxModelType } from '../../compiler/onnx/export.ts';
import { ModelPool } from '../../edge/engine.ts';
import { configureOrt, ortHeapBytes, type Ort } from '../../edge/ort.ts';
import { startupMarks } from '../../edge/startup.ts';
import { loadManifest } from '../../edge/store.ts';
import { FsModelStore } from '../../edge/store-fs.ts';
import { WARM_UP_MODEL_BASE64 } from '../../edge/warm-up-model.ts';
import { warmUpModule } from '../../scripts/make-warm-up-model.ts';
import { FIXTURE_MODELS, fixtureWasm } from './helpers.ts';

// onnxModelType keeps the .proto's field names (keepCase), so the operator is `op_type`.
const opTypes = (bytes: Uint8Array) => {
  const model = onnxModelType().decode(bytes) as unknown as { graph: { node: { op_type: string }[] } };
  return new Set(model.graph.node.map((n) => n.op_type));
};

describe('onnxruntime warm-up', () => {
  it('the committed warm-up model is what scripts/make-warm-up-model.ts makes', () => {
    expect(readFileSync('edge/warm-up-model.ts', 'utf8')).toBe(warmUpModule());
  });

  it('holds every operator of the shipped models, so that it runs the same code', () => {
    const warm = opTypes(Buffer.from(WARM_UP_MODEL_BASE64, 'base64'));
    expect([...warm].sort()).toEqual(['Add', 'AveragePool', 'Conv', 'Flatten', 'Gemm', 'Relu']);
    const manifest = JSON.parse(readFileSync('models/fashion-mnist/manifest.json', 'utf8')) as { models: { file: string }[] };
    for (const m of manifest.models) {
      const shipped = opTypes(readFileSync(`models/fashion-mnist/${m.file}`));
      expect(shipped.has('Conv'), m.file).toBe(true);
      expect([...shipped].filter((op) => !warm.has(op)), m.file).toEqual([]);
    }
  });

  it('instantiates ORT before any model is asked for, loads no model, and the first session then reuses it', async () => {
    const ort = configureOrt((await fixtureWasm()).ort);
    const store = new FsModelStore(FIXTURE_MODELS);
    const manifest = await loadManifest(store);
    const pool = new ModelPool(ort, store, manifest);
    expect(ortHeapBytes()).toBe(0);
    const before = startupMarks().length;
    await pool.warmUp();
    let phases = startupMarks().slice(before).map((m) => m.phase);
    expect(phases).toEqual(['ort-instantiated', 'ort-warmed']);
    expect(ortHeapBytes()).toBeGreaterThan(0);
    expect(pool.states().map((s) => s.state)).toEqual(manifest.models.map(() => 'unloaded'));

    const entry = manifest.models.find((m) => m.id === 'tops')!;
    const [scores] = await pool.run(entry, new Float32Array(784).fill(0.25), 1);
    expect(scores).toHaveLength(entry.classes.length);
    phases = startupMarks().slice(before).map((m) => m.phase);
    expect(phases.filter((p) => p === 'ort-instantiated')).toHaveLength(1);
    expect(phases.slice(2)).toEqual(['model-requested:tops', 'model-verified:tops', 'session-created:tops', 'first-run:tops']);
  });

  it('a failed warm-up resolves, says why, and leaves the queue working', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const broken = { InferenceSession: { create: () => Promise.reject(new Error('no wasm here')) } } as unknown as Ort;
      const store = new FsModelStore(FIXTURE_MODELS);
      const manifest = await loadManifest(store);
      const pool = new ModelPool(broken, store, manifest);
      await expect(pool.warmUp()).resolves.toBeUndefined();
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('no wasm here'));
      // The next session is still attempted (and fails for its own reason, reported as a 503).
      await expect(pool.session(manifest.models.find((m) => m.id === 'tops')!)).rejects.toMatchObject({ status: 503, message: expect.stringContaining('no wasm here') });
    } finally {
      warn.mockRestore();
    }
  });
});
