import { describe, expect, it } from 'vitest';
import { type BatchRecipe, epochOrder } from '../../compiler/train/batches.ts';
import { BatchPipeline, type PrefetchMode } from '../../compiler/train/pipeline.ts';
import { tinyData } from './helpers.ts';

const data = tinyData(64, 8, 'train', 12, 3);
const recipe: BatchRecipe = {
  augment: { flip: true, pad: 2, cutout: 4 },
  degrade: { kinds: ['jpeg', 'blur', 'awgn', 'saltpepper'] },
  keepClean: true,
  mean: [0.5, 0.5, 0.5],
  std: [0.25, 0.25, 0.25],
};

async function epochBatches(mode: PrefetchMode, first = 0, r = recipe) {
  const pipeline = await BatchPipeline.create(data, r, { mode });
  try {
    pipeline.startEpoch(epochOrder(data.count, 1234), 1234, 16, first);
    const out = [];
    for (let b = first; b < 4; b++) out.push(await pipeline.next());
    return { batches: out, stats: pipeline.stats };
  } finally {
    await pipeline.close();
  }
}

describe('batch pipeline', () => {
  it('worker and inline prefetch give identical batches, in order, from any starting batch', async () => {
    const inline = await epochBatches('inline');
    const worker = await epochBatches('worker');
    const resumed = await epochBatches('worker', 2);
    expect(inline.batches.map((b) => b.index)).toEqual([0, 1, 2, 3]);
    for (let b = 0; b < 4; b++) {
      expect(worker.batches[b]!.x).toEqual(inline.batches[b]!.x);
      expect(worker.batches[b]!.clean).toEqual(inline.batches[b]!.clean);
      expect(worker.batches[b]!.labels).toEqual(inline.batches[b]!.labels);
      expect(worker.batches[b]!.levels).toEqual(inline.batches[b]!.levels);
    }
    expect(resumed.batches[0]!.x).toEqual(inline.batches[2]!.x);
    // The degraded copy differs from the clean one (levels are random, some non-identity).
    expect(inline.batches[0]!.x).not.toEqual(inline.batches[0]!.clean);
    expect(inline.stats.mainPrepMs).toBeGreaterThan(0);
    expect(worker.stats.mainPrepMs).toBe(0);
    expect(worker.stats.prepMs).toBeGreaterThan(0);
    expect(worker.stats.batches).toBe(4);
  });

  it('reports a failure inside the worker as an error from next()', async () => {
    const bad: BatchRecipe = { ...recipe, degrade: { kinds: ['blur'], levels: { blur: { min: 0, max: 99 } } } };
    await expect(epochBatches('worker', 0, bad)).rejects.toThrow(/batch preparation failed: .*level/);
  });
});
