import { describe, expect, it } from 'vitest';
import { pruneChannels } from '../../compiler/catro/prune.ts';
import { recalibrateBatchNorm } from '../../compiler/catro/recalibrate.ts';
import { randomBnParams, randomImages, tinyResnet } from './fixtures.ts';
import { referenceForward, referenceTapRunner } from './reference-forward.ts';

describe('recalibrateBatchNorm', () => {
  it('sets every BN running mean/variance to the statistics of its input on the given images', async () => {
    const graph = tinyResnet();
    const params = randomBnParams(graph, 31);
    const pruned = pruneChannels(graph, params, new Map([['s1b0.conv1', [0, 2, 5]], ['s2b0.conv1', [1, 3, 4, 9]]]));
    const n = 10;
    const x = randomImages(32, n, 64);
    const recal = await recalibrateBatchNorm(pruned.graph, pruned.params, x, n, referenceTapRunner, { batchSize: 4 });
    // Self-consistency: with the new statistics, each BN input has exactly those statistics.
    const acts = referenceForward(pruned.graph, recal, x, n);
    let changed = 0;
    for (const l of pruned.graph.layers) {
      if (l.kind !== 'bn') continue;
      const input = acts.get(l.input)!.data;
      const mean = recal.get(`${l.name}/mean`)!.data;
      const variance = recal.get(`${l.name}/variance`)!.data;
      const C = mean.length;
      for (let c = 0; c < C; c++) {
        let s = 0, s2 = 0, k = 0;
        for (let i = c; i < input.length; i += C) {
          s += input[i]!;
          s2 += input[i]! * input[i]!;
          k++;
        }
        const m = s / k;
        expect(mean[c]).toBeCloseTo(m, 4);
        expect(variance[c]).toBeCloseTo(s2 / k - m * m, 3);
        changed = Math.max(changed, Math.abs(mean[c]! - pruned.params.get(`${l.name}/mean`)!.data[c]!));
      }
    }
    expect(changed).toBeGreaterThan(0.01);
    // Only running statistics change.
    for (const [k, t] of recal) if (!k.endsWith('/mean') && !k.endsWith('/variance')) expect(t).toBe(pruned.params.get(k));
    await expect(recalibrateBatchNorm(graph, params, x.subarray(1), n, referenceTapRunner)).rejects.toThrow(/639 input values do not split into 10 samples/);
  });
});
