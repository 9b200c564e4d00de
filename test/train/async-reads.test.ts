/**
 * Training must read tensors back only asynchronously: tfjs-webgpu implements dataSync()
 * with an OffscreenCanvas, which Node lacks, so one synchronous read kills a compile on a GPU
 * host ("OffscreenCanvas is not defined", found on an H100). CI has no GPU, so this test makes
 * every synchronous read throw and runs what a compile runs: training with validation and
 * step checkpoints, and the fused model's BN recalibration.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recalibrateBn } from '../../compiler/pipeline/fusion.ts';
import type { Engine } from '../../compiler/engine/types.ts';
import { train } from '../../compiler/train/loop.ts';
import { testEngine } from '../engine/engines.ts';
import { tinyData, tinyGraph, tinyParams } from './helpers.ts';

const SYNC_READS = ['dataSync', 'arraySync', 'bufferSync'] as const;
const root = mkdtempSync(join(tmpdir(), 'facet-async-'));

/** Runs `fn` with every synchronous tensor read throwing; returns what it returned. */
async function withoutSyncReads<T>(fn: () => Promise<T>): Promise<T> {
  const proto = tf.Tensor.prototype as unknown as Record<string, unknown>;
  const saved = SYNC_READS.map((name) => proto[name]);
  for (const name of SYNC_READS)
    proto[name] = function () {
      throw new Error(`synchronous ${name}() (webgpu in Node cannot do it)`);
    };
  try {
    return await fn();
  } finally {
    SYNC_READS.forEach((name, i) => (proto[name] = saved[i]));
  }
}

let engine: Engine;
beforeAll(async () => {
  engine = await testEngine('tfjs');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('training on tfjs without synchronous reads', () => {
  it('the trap works: a synchronous read inside it throws', async () => {
    await expect(withoutSyncReads(async () => tf.scalar(1).dataSync())).rejects.toThrow(/synchronous dataSync/);
    expect(tf.scalar(2).dataSync()[0]).toBe(2);
  });

  it('trains with validation and step checkpoints', async () => {
    const graph = tinyGraph();
    const r = await withoutSyncReads(() =>
      train({
        graph,
        params: tinyParams(graph),
        train: tinyData(96, 1),
        val: tinyData(30, 2, 'val'),
        epochs: 2,
        batchSize: 32,
        optimizer: { kind: 'radam' },
        schedule: { kind: 'constant', lr: 0.01 },
        normalize: { mean: [0.4], std: [0.3] },
        engine,
        seed: 0,
        outDir: join(root, 'run'),
        checkpointEverySteps: 1,
        prefetch: 'inline',
      }),
    );
    expect(r.history).toHaveLength(2);
    expect(r.history[1]!.valAccuracy).not.toBeNull();
    expect(r.best?.params.size).toBeGreaterThan(0);
  });

  it('recalibrates BN statistics', async () => {
    const graph = tinyGraph();
    const params = tinyParams(graph);
    const data = tinyData(16, 3);
    const x = () => ({ x: Float32Array.from(data.images, (v) => v / 255), n: data.count });
    const out = await withoutSyncReads(() => recalibrateBn(engine, graph, params, [x(), x()]));
    expect(out.size).toBe(params.size);
  });
});
