import { describe, expect, it } from 'vitest';
import type { Graph, ParamStore } from '../../compiler/graph/ir.ts';
import { checkParams, inferShapes } from '../../compiler/graph/shapes.ts';
import { maskChannels, pruneChannels, restrictClasses, sliceTensor } from '../../compiler/catro/prune.ts';
import { analyzeChannelSpaces, prunableSpaces } from '../../compiler/catro/spaces.ts';
import { randomBnParams, randomImages, tinyResnet, tinyVgg } from './fixtures.ts';
import { prng } from './helpers.ts';
import { referenceForward } from './reference-forward.ts';

function randomKeep(graph: Graph, mode: 'inner' | 'residual', seed: number): Map<string, number[]> {
  const rand = prng(seed);
  const keep = new Map<string, number[]>();
  for (const s of prunableSpaces(graph, mode)) {
    const chosen = Array.from({ length: s.channels }, (_, j) => j).filter(() => rand() < 0.5);
    keep.set(s.id, chosen.length > 0 ? chosen : [s.channels - 1]);
  }
  return keep;
}

function logits(graph: Graph, params: ParamStore, x: Float32Array, n: number): Float32Array {
  return referenceForward(graph, params, x, n).get(graph.output)!.data;
}

describe('channel spaces', () => {
  it('finds the first conv of every basic block as inner spaces', () => {
    const ids = prunableSpaces(tinyResnet()).map((s) => s.id);
    expect(ids).toEqual(['s1b0.conv1', 's2b0.conv1', 's3b0.conv1']);
    const s = prunableSpaces(tinyResnet())[0]!;
    expect(s.members).toEqual(['s1b0.conv1', 's1b0.bn1', 's1b0.relu1']);
    expect(s.consumers).toEqual(['s1b0.conv2']);
    expect(s.taps).toEqual(['s1b0.relu1']);
  });

  it('ties the residual stream of a stage with projection shortcuts into one space', () => {
    const res = prunableSpaces(tinyResnet(), 'residual').filter((s) => s.kind === 'residual');
    expect(res.map((s) => s.producers)).toEqual([
      ['stem.conv', 's1b0.conv2'],
      ['s2b0.conv2', 's2b0.short.conv'],
      ['s3b0.conv2', 's3b0.short.conv'],
    ]);
    expect(res[0]!.taps).toEqual(['stem.relu', 's1b0.relu']);
    expect(res[2]!.consumers).toEqual(['fc']);
  });

  it('refuses residual streams touched by parameter-free shortcuts, with the reason', () => {
    const spaces = analyzeChannelSpaces(tinyResnet('A'));
    const stream = spaces.find((s) => s.members.includes('s2b0.add'))!;
    expect(stream.prunable).toBe(false);
    expect(stream.reason).toMatch(/padshortcut/);
    expect(prunableSpaces(tinyResnet('A'), 'residual').map((s) => s.id)).toEqual(['s1b0.conv1', 's2b0.conv1', 's3b0.conv1']);
  });

  it('finds every VGG conv that feeds one conv, through pools', () => {
    const spaces = prunableSpaces(tinyVgg());
    expect(spaces.map((s) => s.id)).toEqual(['conv0.conv', 'conv1.conv', 'conv2.conv']);
    expect(spaces[0]!.taps).toEqual(['pool0']);
  });
});

describe('sliceTensor', () => {
  it('keeps the listed indices along each axis', () => {
    const t = { shape: [2, 3], data: Float32Array.from([0, 1, 2, 10, 11, 12]) };
    expect(sliceTensor(t, [undefined, [2, 0]])).toEqual({ shape: [2, 2], data: Float32Array.from([2, 0, 12, 10]) });
    expect(sliceTensor(t, [[1], [1, 2]])).toEqual({ shape: [1, 2], data: Float32Array.from([11, 12]) });
  });
});

describe('pruneChannels', () => {
  it('slices producer filters, BN entries and consumer input channels', () => {
    const graph = tinyResnet();
    const params = randomBnParams(graph, 1);
    const keep = new Map([['s2b0.conv1', [0, 3, 7]]]);
    const { graph: g2, params: p2 } = pruneChannels(graph, params, keep);
    checkParams(g2, p2);
    expect((g2.layers.find((l) => l.name === 's2b0.conv1') as { filters: number }).filters).toBe(3);
    const k = params.get('s2b0.conv1/kernel')!; // [3,3,8,16]
    const k2 = p2.get('s2b0.conv1/kernel')!;
    expect(k2.shape).toEqual([3, 3, 8, 3]);
    expect(k2.data[(1 * 3 + 2) * 8 * 3 + 5 * 3 + 1]).toBe(k.data[(1 * 3 + 2) * 8 * 16 + 5 * 16 + 3]);
    expect(Array.from(p2.get('s2b0.bn1/variance')!.data)).toEqual([0, 3, 7].map((j) => params.get('s2b0.bn1/variance')!.data[j]));
    const c = params.get('s2b0.conv2/kernel')!; // [3,3,16,16]
    const c2 = p2.get('s2b0.conv2/kernel')!;
    expect(c2.shape).toEqual([3, 3, 3, 16]);
    expect(c2.data[(2 * 3 + 0) * 3 * 16 + 2 * 16 + 9]).toBe(c.data[(2 * 3 + 0) * 16 * 16 + 7 * 16 + 9]);
    // Pure: the input store is unchanged, untouched tensors are shared.
    expect(params.get('s2b0.conv1/kernel')!.shape).toEqual([3, 3, 8, 16]);
    expect(p2.get('s3b0.conv1/kernel')).toBe(params.get('s3b0.conv1/kernel'));
  });

  const cases: [string, () => Graph, 'inner' | 'residual'][] = [
    ['ResNet, inner spaces', () => tinyResnet(), 'inner'],
    ['ResNet, residual streams too', () => tinyResnet(), 'residual'],
    ['ResNet option A, pool2x2 head', () => tinyResnet('A', 'pool2x2'), 'inner'],
    ['VGG', () => tinyVgg(), 'inner'],
  ];
  for (const [name, build, mode] of cases) {
    it(`gives the masked network's outputs in eval mode: ${name}`, () => {
      const graph = build();
      const params = randomBnParams(graph, 2);
      const keep = randomKeep(graph, mode, 3);
      const [h, w, c] = inferShapes(graph).get('input')! as number[];
      const n = 3;
      const x = randomImages(4, n, h! * w! * c!);
      const masked = logits(graph, maskChannels(graph, params, keep), x, n);
      const pruned = pruneChannels(graph, params, keep);
      checkParams(pruned.graph, pruned.params);
      const out = logits(pruned.graph, pruned.params, x, n);
      const full = logits(graph, params, x, n);
      let maxDiff = 0;
      let changed = 0;
      for (let i = 0; i < out.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(out[i]! - masked[i]!));
        changed = Math.max(changed, Math.abs(full[i]! - masked[i]!));
      }
      expect(maxDiff).toBeLessThan(1e-4);
      expect(changed).toBeGreaterThan(1e-3); // the masks really changed the function
    });
  }

  it('rejects bad keep lists with clear errors', () => {
    const graph = tinyResnet();
    const params = randomBnParams(graph, 1);
    expect(() => pruneChannels(graph, params, new Map([['nope', [0]]]))).toThrow(/no layer "nope"/);
    expect(() => pruneChannels(graph, params, new Map([['s1b0.conv1', []]]))).toThrow(/empty/);
    expect(() => pruneChannels(graph, params, new Map([['s1b0.conv1', [8]]]))).toThrow(/channel 8, outside \[0, 8\)/);
    expect(() => pruneChannels(graph, params, new Map([['s1b0.conv1', [1, 1]]]))).toThrow(/repeats/);
    expect(() => pruneChannels(tinyResnet('A'), randomBnParams(tinyResnet('A'), 1), new Map([['s2b0.conv2', [0]]]))).toThrow(/cannot be pruned: .*padshortcut/);
    expect(() => pruneChannels(graph, params, new Map([['stem.conv', [0]], ['s1b0.conv2', [1]]]))).toThrow(/same channel space/);
  });
});

describe('restrictClasses', () => {
  it('keeps the classifier outputs of the subtask classes, in the given order', () => {
    const graph = tinyResnet();
    const params = randomBnParams(graph, 5);
    const x = randomImages(6, 2, 64);
    const full = logits(graph, params, x, 2);
    const r = restrictClasses(graph, params, [3, 0]);
    checkParams(r.graph, r.params);
    const sub = logits(r.graph, r.params, x, 2);
    for (let i = 0; i < 2; i++) {
      expect(sub[i * 2]).toBeCloseTo(full[i * 5 + 3]!, 6);
      expect(sub[i * 2 + 1]).toBeCloseTo(full[i * 5 + 0]!, 6);
    }
    expect(() => restrictClasses(graph, params, [5])).toThrow(/class 5 is outside \[0, 5\)/);
    expect(() => restrictClasses(graph, params, [1, 1])).toThrow(/repeats/);
    expect(() => restrictClasses(graph, params, [])).toThrow(/no classes/);
  });
});
