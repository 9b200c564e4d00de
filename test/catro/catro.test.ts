import { describe, expect, it } from 'vitest';
import { baselinePrune, catroPrune, filterL1Norms, measureScatter, sampleCalibration, truncateToTaps, calibrationSet } from '../../compiler/catro/catro.ts';
import { maskChannels } from '../../compiler/catro/prune.ts';
import { selectLayer } from '../../compiler/catro/select.ts';
import { prunableSpaces } from '../../compiler/catro/spaces.ts';
import { countGraph } from '../../compiler/graph/count.ts';
import { checkParams } from '../../compiler/graph/shapes.ts';
import { Rng } from '../../shared/rng.ts';
import { randomBnParams, randomImages, tinyResnet } from './fixtures.ts';
import { referenceForward, referenceTapRunner } from './reference-forward.ts';

const graph = tinyResnet();
const params = randomBnParams(graph, 21);
const n = 12;
const x = randomImages(22, n, 64);
const slots = Array.from({ length: n }, (_, i) => i % 3);
const calib = { x, slots };

describe('catroPrune (reference interpreter)', () => {
  it('selects shallow → deep with the earlier masks applied, then removes channels', async () => {
    const classes = [4, 0, 2];
    const res = await catroPrune(graph, params, calib, referenceTapRunner, { classes, budget: { ratio: 0.5 } });
    const spaces = prunableSpaces(graph);
    expect([...res.keep.keys()]).toEqual(spaces.map((s) => s.id));
    for (const s of spaces) expect(res.keep.get(s.id)).toHaveLength(Math.round(0.5 * s.channels));
    // Replay: each layer's choice is Stage II on the scatter measured under the masks before it.
    const so_far = new Map<string, number[]>();
    for (const s of spaces) {
      const masked = maskChannels(graph, params, so_far);
      const sc = (await measureScatter(graph, masked, [s], calib, 3, referenceTapRunner)).get(s.id)!;
      const expected = selectLayer(sc.b, sc.w, res.keep.get(s.id)!.length).selected;
      expect(res.keep.get(s.id)).toEqual(expected);
      so_far.set(s.id, expected);
      const report = res.spaces.find((r) => r.id === s.id)!;
      expect(report.selection!.lambdas.length).toBeGreaterThanOrEqual(1);
    }
    // The result is the masked model restricted to the subtask's classes.
    checkParams(res.graph, res.params);
    const masked = referenceForward(graph, maskChannels(graph, params, res.keep), x, n).get('fc')!.data;
    const pruned = referenceForward(res.graph, res.params, x, n).get('fc')!.data;
    for (let i = 0; i < n; i++) {
      classes.forEach((c, slot) => expect(pruned[i * 3 + slot]).toBeCloseTo(masked[i * 5 + c]!, 4));
    }
    expect(res.macs.full).toBe(countGraph(graph).macs);
    expect(res.macs.pruned).toBe(countGraph(res.graph).macs);
    expect(res.macs.pruned).toBeLessThan(res.macs.full);
    expect(res.paramCount.pruned).toBeLessThan(res.paramCount.full);
  });

  it('meets a FLOPs budget with either Stage I method, residual streams included', async () => {
    for (const method of ['ratio', 'greedy'] as const) {
      const res = await catroPrune(graph, params, calib, referenceTapRunner, {
        classes: [0, 1, 2],
        budget: { flops: 0.4, method },
        mode: 'residual',
        pooling: 'gap',
        batchSize: 5,
      });
      // Widths were set for the 5-class model; restricting the head only lowers MACs further.
      expect(res.widths.macs).toBeLessThanOrEqual(0.4 * res.macs.full);
      expect(res.macs.pruned).toBeLessThanOrEqual(res.widths.macs);
      expect(res.spaces.some((s) => s.id === 'stem.conv' && s.kept.length < 8)).toBe(true);
    }
  });

  it('rejects a calibration set that does not fit', async () => {
    const run = (c: { x: Float32Array; slots: number[] }) =>
      catroPrune(graph, params, c, referenceTapRunner, { classes: [0, 1, 2], budget: { ratio: 0.5 } });
    await expect(run({ x: x.subarray(1), slots })).rejects.toThrow(/calibration x has 767 values, expected 12 samples × 64/);
    await expect(run({ x, slots: slots.map((s) => (s === 2 ? 3 : s)) })).rejects.toThrow(/slot 2 is 3, outside \[0, 3\)/);
    await expect(run({ x: x.subarray(0, 4 * 64), slots: slots.slice(0, 4) })).rejects.toThrow(/class slot 1 has 1 calibration samples/);
    const withBudget = (budget: Parameters<typeof catroPrune>[4]['budget']) =>
      catroPrune(graph, params, calib, referenceTapRunner, { classes: [0, 1, 2], budget });
    await expect(withBudget({ flops: 1.5 })).rejects.toThrow(/flops must be a fraction in \(0, 1\], got 1.5/);
    await expect(withBudget({ flops: 0.5, method: 'best' as 'ratio' })).rejects.toThrow(/method must be "ratio" or "greedy", got "best"/);
  });
});

describe('truncateToTaps', () => {
  it('keeps only what the taps need and computes the same tap values', () => {
    const cut = truncateToTaps(graph, ['s2b0.relu1', 's1b0.relu1']);
    expect(cut.layers.some((l) => l.name.startsWith('s3') || l.name === 'fc' || l.name === 's2b0.conv2')).toBe(false);
    const full = referenceForward(graph, params, x, n);
    const part = referenceForward(cut, params, x, n);
    for (const t of ['s2b0.relu1', 's1b0.relu1']) expect(part.get(t)!.data).toEqual(full.get(t)!.data);
    expect(() => truncateToTaps(graph, ['nope'])).toThrow(/none of the taps/);
  });
});

describe('baselines at the same widths', () => {
  const widths = new Map(prunableSpaces(graph).map((s) => [s.id, Math.ceil(s.channels / 3)]));

  it('L1 keeps the filters with the largest L1 norms', () => {
    const res = baselinePrune(graph, params, widths, { classes: [0, 1], selector: 'l1' });
    for (const s of prunableSpaces(graph)) {
      const norms = filterL1Norms(graph, params, s);
      const kept = res.keep.get(s.id)!;
      expect(kept).toHaveLength(widths.get(s.id)!);
      const minKept = Math.min(...kept.map((j) => norms[j]!));
      for (let j = 0; j < s.channels; j++) if (!kept.includes(j)) expect(norms[j]).toBeLessThanOrEqual(minKept);
    }
    checkParams(res.graph, res.params);
    expect(res.graph.layers.find((l) => l.name === 'fc')).toMatchObject({ units: 2 });
  });

  it('random is reproducible per seed and differs across seeds', () => {
    const pick = (seed: number) => baselinePrune(graph, params, widths, { classes: [0], selector: 'random', rng: new Rng(seed) }).keep;
    expect(pick(1)).toEqual(pick(1));
    expect(pick(1)).not.toEqual(pick(2));
    for (const [id, kept] of pick(3)) {
      expect(kept).toHaveLength(widths.get(id)!);
      expect(new Set(kept).size).toBe(kept.length);
    }
  });
});

describe('sampleCalibration', () => {
  it('draws n distinct samples of each subtask class, reproducibly', () => {
    const labels = Array.from({ length: 100 }, (_, i) => i % 10);
    const a = sampleCalibration(labels, [7, 2], 5, new Rng(4));
    expect(a).toEqual(sampleCalibration(labels, [7, 2], 5, new Rng(4)));
    expect(a.indices).toHaveLength(10);
    expect(new Set(a.indices).size).toBe(10);
    a.indices.forEach((idx, i) => expect(labels[idx]).toBe([7, 2][a.slots[i]!]));
    expect(() => sampleCalibration(labels, [1], 11, new Rng(1))).toThrow(/class 1 has 10 samples, fewer than the 11/);
    expect(() => sampleCalibration(labels, [1], 1, new Rng(1))).toThrow(/n ≥ 2/);
  });
});

describe('calibrationSet', () => {
  it('gathers the sampled images and converts them with the caller\'s function', () => {
    const count = 40;
    const images = Uint8Array.from({ length: count * 4 }, (_, i) => i % 251);
    const labels = Uint16Array.from({ length: count }, (_, i) => i % 4);
    const data = { name: 't', split: 'train', count, height: 2, width: 2, channels: 1 as const, images, labels, classNames: ['a', 'b', 'c', 'd'] };
    const set = calibrationSet(data, [3, 1], 3, new Rng(9), (u8) => Float32Array.from(u8, (v) => v / 2));
    const { indices, slots } = sampleCalibration(labels, [3, 1], 3, new Rng(9));
    expect(Array.from(set.slots)).toEqual(slots);
    indices.forEach((idx, k) => {
      for (let p = 0; p < 4; p++) expect(set.x[k * 4 + p]).toBe(images[idx * 4 + p]! / 2);
    });
    expect(() => calibrationSet(data, [0], 2, new Rng(1), () => new Float32Array(3))).toThrow(/toInput returned 3 values for 2 images of 4/);
  });
});
