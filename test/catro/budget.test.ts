import { describe, expect, it } from 'vitest';
import { greedyBudget, ratioBudget, widthsForRatios } from '../../compiler/catro/budget.ts';
import { withWidths } from '../../compiler/catro/prune.ts';
import type { Scatter } from '../../compiler/catro/scatter.ts';
import { type ChannelSpace, prunableSpaces } from '../../compiler/catro/spaces.ts';
import { resnet } from '../../compiler/graph/builders.ts';
import { countGraph } from '../../compiler/graph/count.ts';
import type { Graph } from '../../compiler/graph/ir.ts';
import { prng } from './helpers.ts';

const macsOf = (g: Graph, spaces: ChannelSpace[], w: Map<string, number>) => countGraph(withWidths(g, spaces, w)).macs;

/** True when no single added channel (in any space below full width) stays within the target. */
function withinOneChannel(g: Graph, spaces: ChannelSpace[], widths: Map<string, number>, target: number): boolean {
  return spaces.every((s) => {
    const k = widths.get(s.id)!;
    if (k >= s.channels) return true;
    return macsOf(g, spaces, new Map(widths).set(s.id, k + 1)) > target;
  });
}

function randomScatters(spaces: ChannelSpace[], seed: number, boost?: string): Map<string, Scatter> {
  const rand = prng(seed);
  return new Map(
    spaces.map((s) => {
      const b = Float64Array.from({ length: s.channels }, () => rand() * (s.id === boost ? 50 : 1));
      const w = Float64Array.from({ length: s.channels }, () => 0.5 + rand());
      return [s.id, { b, w }];
    }),
  );
}

describe('Stage I budgets', () => {
  it('ResNet-56 (option A) with a uniform inner-only keep ratio 0.5 has about 62.97M MACs', () => {
    const g = resnet({ depth: 56, input: [32, 32, 3], classes: 10, shortcut: 'A' });
    const spaces = prunableSpaces(g);
    expect(spaces).toHaveLength(27);
    expect(countGraph(g).macs / 1e6).toBeCloseTo(125.49, 2);
    const macs = macsOf(g, spaces, widthsForRatios(spaces, 0.5));
    expect(Math.abs(macs / 1e6 - 62.97)).toBeLessThan(0.01);
  });

  const g20 = resnet({ depth: 20, input: [28, 28, 1], classes: 10 });
  for (const mode of ['inner', 'residual'] as const) {
    for (const fraction of [0.25, 0.5, 0.8]) {
      it(`ratio budget (A) hits ${fraction} of the MACs within one channel (${mode})`, () => {
        const spaces = prunableSpaces(g20, mode);
        const target = fraction * countGraph(g20).macs;
        const { widths, macs } = ratioBudget(g20, spaces, target);
        expect(macs).toBe(macsOf(g20, spaces, widths));
        expect(macs).toBeLessThanOrEqual(target);
        expect(withinOneChannel(g20, spaces, widths, target)).toBe(true);
      });

      it(`greedy budget (B) hits ${fraction} of the MACs within one channel (${mode})`, () => {
        const spaces = prunableSpaces(g20, mode);
        const target = fraction * countGraph(g20).macs;
        const { widths, macs } = greedyBudget(g20, spaces, randomScatters(spaces, 9), target);
        expect(macs).toBe(macsOf(g20, spaces, widths));
        expect(macs).toBeLessThanOrEqual(target);
        // The last removal crossed the target: with that channel back the model was over it.
        const { widths: w2, last } = greedyBudget(g20, spaces, randomScatters(spaces, 9), target);
        expect(w2).toEqual(widths);
        const back = macsOf(g20, spaces, new Map(widths).set(last!.space, widths.get(last!.space)! + 1));
        expect(back - macs).toBe(last!.saving);
        expect(back).toBeGreaterThan(target);
        for (const s of spaces) expect(widths.get(s.id)!).toBeGreaterThanOrEqual(Math.ceil(0.1 * s.channels));
      });
    }
  }

  it('greedy keeps more of a discriminative layer', () => {
    const spaces = prunableSpaces(g20);
    const target = 0.4 * countGraph(g20).macs;
    const boosted = spaces[4]!.id;
    const plain = greedyBudget(g20, spaces, randomScatters(spaces, 3), target).widths;
    const boost = greedyBudget(g20, spaces, randomScatters(spaces, 3, boosted), target).widths;
    expect(boost.get(boosted)!).toBeGreaterThan(plain.get(boosted)!);
  });

  it('relative ratios shape the per-layer widths', () => {
    const spaces = prunableSpaces(g20);
    const relative = new Map(spaces.map((s, i) => [s.id, i < 3 ? 2 : 1]));
    const { widths } = ratioBudget(g20, spaces, 0.5 * countGraph(g20).macs, { relative, fill: false });
    const r = (i: number) => widths.get(spaces[i]!.id)! / spaces[i]!.channels;
    expect(r(0)).toBeGreaterThan(r(5));
  });

  it('rejects unreachable targets with clear errors', () => {
    const spaces = prunableSpaces(g20);
    const full = countGraph(g20).macs;
    expect(() => ratioBudget(g20, spaces, 0.01 * full)).toThrow(/below .* one channel per prunable layer/);
    expect(() => greedyBudget(g20, spaces, randomScatters(spaces, 1), 0.01 * full)).toThrow(/not reachable keeping ⌈0.1·C⌉/);
    expect(() => ratioBudget(g20, spaces, 2 * full)).toThrow(/exceeds the full model/);
    expect(() => widthsForRatios(spaces, 1.5)).toThrow(/keep ratio of "s1b0.conv1" must be in \[0, 1\]/);
  });

  it('per-layer keep ratios narrow the named layers only, and a name that is not a prunable layer is an error', () => {
    const spaces = prunableSpaces(g20);
    const widths = widthsForRatios(spaces, new Map([['s1b0.conv1', 0.25], ['s3b2.conv1', 0.5]]));
    expect(widths.get('s1b0.conv1')).toBe(4);
    expect(widths.get('s3b2.conv1')).toBe(32);
    for (const s of spaces) if (s.id !== 's1b0.conv1' && s.id !== 's3b2.conv1') expect(widths.get(s.id)).toBe(s.channels);
    expect(() => widthsForRatios(spaces, new Map([['s1b0.conv2', 0.5]]))).toThrow(/"s1b0.conv2", which is not a prunable layer \(prunable: s1b0.conv1, s1b1.conv1, .*s3b2.conv1\)/);
  });
});
