import { describe, expect, it } from 'vitest';
import { adaptivePoolWindow, initParams, resnet, vgg } from '../../compiler/graph/builders.ts';
import { countGraph } from '../../compiler/graph/count.ts';
import type { ConvLayer, Graph } from '../../compiler/graph/ir.ts';
import { checkParams, inferShapes } from '../../compiler/graph/shapes.ts';
import { TestRng } from '../nn/test-rng.ts';

const M = (n: number, digits: number): number => Number((n / 1e6).toFixed(digits));

describe('countGraph on CIFAR ResNets (catro.md §5)', () => {
  it('ResNet-56 option A, GAP, 32×32×3: 125.49M MACs, 0.853M params', () => {
    const c = countGraph(resnet({ depth: 56, input: [32, 32, 3], classes: 10, shortcut: 'A' }));
    expect(M(c.macs, 2)).toBe(125.49);
    expect(M(c.params, 3)).toBe(0.853);
  });
  it('ResNet-56 with projection shortcuts: 125.75M MACs', () => {
    const c = countGraph(resnet({ depth: 56, input: [32, 32, 3], classes: 10, shortcut: 'projection' }));
    expect(M(c.macs, 2)).toBe(125.75);
  });
  it('ResNet-20 option A: 40.55M / 0.270M, and 30.82M MACs on 28×28×1', () => {
    const rgb = countGraph(resnet({ depth: 20, input: [32, 32, 3], classes: 10, shortcut: 'A' }));
    // By hand: stem 442,368 + stage1 6×2,359,296 + stages 2,3 each 1,179,648 + 5×2,359,296 + fc 640.
    expect(rgb.macs).toBe(40_551_040);
    // conv 267,696 + BN γ/β 1,376 + fc 650.
    expect(rgb.params).toBe(269_722);
    const gray = countGraph(resnet({ depth: 20, input: [28, 28, 1], classes: 10, shortcut: 'A' }));
    expect(M(gray.macs, 2)).toBe(30.82);
  });
  it('per-layer counts sum to the totals and parameter-free layers count zero', () => {
    const c = countGraph(resnet({ depth: 20, input: [32, 32, 3], classes: 10, shortcut: 'A' }));
    expect(c.perLayer.reduce((s, l) => s + l.macs, 0)).toBe(c.macs);
    expect(c.perLayer.reduce((s, l) => s + l.params, 0)).toBe(c.params);
    for (const l of c.perLayer) if (!['conv', 'bn', 'dense'].includes(l.kind)) expect(l.params + l.macs).toBe(0);
    expect(c.perLayer.find((l) => l.name === 's2b0.conv1')).toMatchObject({ shape: [16, 16, 32], macs: 16 * 16 * 32 * 9 * 16 });
  });
});

describe('resnet builder', () => {
  it('has 6n+2 weighted layers, feature = post-ReLU of the last block', () => {
    const g = resnet({ depth: 32, input: [32, 32, 3], classes: 7, shortcut: 'A' });
    const weighted = g.layers.filter((l) => l.kind === 'conv' || l.kind === 'dense');
    expect(weighted.length).toBe(32);
    expect(g.feature).toBe('s3b4.relu');
    const shapes = inferShapes(g);
    expect(shapes.get(g.feature!)).toEqual([8, 8, 64]);
    expect(shapes.get('fc')).toEqual([7]);
  });
  it('width multiplier scales the stage channels', () => {
    const shapes = inferShapes(resnet({ depth: 20, width: 0.5, input: [32, 32, 1], classes: 10 }));
    expect(shapes.get('s1b0.relu')).toEqual([32, 32, 8]);
    expect(shapes.get('s3b2.relu')).toEqual([8, 8, 32]);
  });
  it('projection shortcut is 1×1 conv stride 2 + BN; option A is a padshortcut', () => {
    const p = resnet({ depth: 20, input: [32, 32, 3], classes: 10 });
    expect(p.layers.find((l) => l.name === 's2b0.short.conv')).toMatchObject({ kind: 'conv', kernel: 1, stride: 2, pad: 0, filters: 32 });
    expect(p.layers.some((l) => l.kind === 'padshortcut')).toBe(false);
    const a = resnet({ depth: 20, input: [32, 32, 3], classes: 10, shortcut: 'A' });
    expect(a.layers.filter((l) => l.kind === 'padshortcut').map((l) => l.name)).toEqual(['s2b0.short', 's3b0.short']);
  });
  it('pool2x2 head: kernel 4 stride 4 on 8×8 maps, kernel 4 stride 3 on 7×7 maps', () => {
    const g32 = resnet({ depth: 20, input: [32, 32, 3], classes: 10, head: 'pool2x2' });
    expect(g32.layers.find((l) => l.name === 'pool')).toMatchObject({ kind: 'avgpool', kernel: 4, stride: 4, pad: 0 });
    const g28 = resnet({ depth: 20, input: [28, 28, 1], classes: 10, head: 'pool2x2' });
    expect(g28.layers.find((l) => l.name === 'pool')).toMatchObject({ kind: 'avgpool', kernel: 4, stride: 3, pad: 0 });
    const shapes = inferShapes(g28);
    expect(shapes.get('s3b2.relu')).toEqual([7, 7, 64]);
    expect(shapes.get('flatten')).toEqual([256]);
  });
  it('rejects bad depth, classes and input', () => {
    expect(() => resnet({ depth: 21, input: [32, 32, 3], classes: 10 })).toThrow(/6n\+2/);
    expect(() => resnet({ depth: 20, input: [32, 32, 3], classes: 0 })).toThrow(/classes/);
    expect(() => resnet({ depth: 20, input: [32, 32] as never, classes: 10 })).toThrow(/input/);
  });
});

/** PyTorch AdaptiveAvgPool2d's window i along one axis: [floor(i·n/o), ceil((i+1)·n/o)). */
function adaptiveWindows(n: number, o: number): [number, number][] {
  return Array.from({ length: o }, (_, i) => [Math.floor((i * n) / o), Math.ceil(((i + 1) * n) / o)]);
}

describe('adaptivePoolWindow', () => {
  it('matches PyTorch adaptive windows exactly whenever it answers, for sizes 1..40 and outputs 1..5', () => {
    let answered = 0;
    for (let n = 1; n <= 40; n++) {
      for (let o = 1; o <= Math.min(5, n); o++) {
        const w = adaptivePoolWindow(n, o);
        const want = adaptiveWindows(n, o);
        const uniform = want.every(([s, e], i) => e - s === want[0]![1] - want[0]![0] && s === i * (o > 1 ? want[1]![0] : 0));
        expect(w !== undefined).toBe(uniform);
        if (!w) continue;
        answered++;
        const plain = Array.from({ length: Math.floor((n - w.kernel) / w.stride) + 1 }, (_, i) => [i * w.stride, i * w.stride + w.kernel]);
        expect(plain).toEqual(want);
      }
    }
    expect(answered).toBeGreaterThan(50);
  });
  it('7 → 2 is kernel 4 stride 3 and 8 → 3 is not uniform', () => {
    expect(adaptivePoolWindow(7, 2)).toEqual({ kernel: 4, stride: 3 });
    expect(adaptivePoolWindow(8, 2)).toEqual({ kernel: 4, stride: 4 });
    expect(adaptivePoolWindow(8, 3)).toBeUndefined();
  });
});

describe('vgg builder', () => {
  it('builds conv-bn-relu blocks with max pools and a GAP head', () => {
    const g = vgg({ input: [32, 32, 3], classes: 10 });
    const shapes = inferShapes(g);
    expect(shapes.get(g.feature!)).toEqual([4, 4, 128]);
    expect(shapes.get('fc')).toEqual([10]);
    const flat = vgg({ input: [28, 28, 1], classes: 4, stages: [8, 'M', 16, 'M'], head: 'flatten' });
    expect(inferShapes(flat).get('flatten')).toEqual([7 * 7 * 16]);
  });
});

describe('inferShapes errors', () => {
  const base = (): Graph => ({
    arch: 't',
    layers: [
      { kind: 'input', name: 'input', shape: [8, 8, 2] },
      { kind: 'conv', name: 'c', input: 'input', filters: 2, kernel: 3, stride: 1, pad: 1, bias: true },
      { kind: 'add', name: 'a', inputs: ['c', 'input'] },
      { kind: 'globalavgpool', name: 'g', input: 'a' },
      { kind: 'dense', name: 'fc', input: 'g', units: 2 },
    ],
    output: 'fc',
  });
  it('names the add layer and both shapes on a channel mismatch', () => {
    const g = base();
    expect(inferShapes(g).get('fc')).toEqual([2]);
    g.layers[1] = { ...(g.layers[1] as ConvLayer), filters: 3 };
    expect(() => inferShapes(g)).toThrow(/layer "a" \(add\).*"c" \[8×8×3\].*"input" \[8×8×2\]/);
  });
  it('reports unknown inputs, non-topological order, duplicates and a bad output', () => {
    const unknown = base();
    unknown.layers[1] = { ...(unknown.layers[1] as ConvLayer), input: 'nope' };
    expect(() => inferShapes(unknown)).toThrow(/layer "c".*unknown input "nope"/);
    const order = base();
    [order.layers[3], order.layers[4]] = [order.layers[4]!, order.layers[3]!];
    expect(() => inferShapes(order)).toThrow(/"g" is defined after/);
    const dup = base();
    dup.layers[2] = { kind: 'relu', name: 'c', input: 'c' };
    expect(() => inferShapes(dup)).toThrow(/"c".*duplicate/);
    const out = base();
    expect(() => inferShapes({ ...out, output: 'zz' })).toThrow(/output "zz"/);
    expect(() => inferShapes({ ...out, output: 'c' })).toThrow(/vector of logits/);
  });
  it('rejects dense on a feature map and a kernel larger than the input', () => {
    const g = base();
    g.layers[4] = { kind: 'dense', name: 'fc', input: 'a', units: 2 };
    expect(() => inferShapes(g)).toThrow(/"fc".*needs a vector input/);
    const big = base();
    big.layers[1] = { kind: 'conv', name: 'c', input: 'input', filters: 2, kernel: 9, stride: 1, pad: 0, bias: false };
    expect(() => inferShapes(big)).toThrow(/kernel 9.*8×8/);
  });
});

describe('initParams', () => {
  const g = resnet({ depth: 20, input: [32, 32, 3], classes: 10 });
  it('creates every parameter with its declared shape, deterministically per seed', () => {
    const a = initParams(g, new TestRng(1));
    checkParams(g, a);
    const b = initParams(g, new TestRng(1));
    const c = initParams(g, new TestRng(2));
    expect(b.get('s2b1.conv1/kernel')!.data).toEqual(a.get('s2b1.conv1/kernel')!.data);
    expect(c.get('s2b1.conv1/kernel')!.data).not.toEqual(a.get('s2b1.conv1/kernel')!.data);
  });
  it('uses Kaiming-normal fan_out for convs, ±1/√fan_in for dense, identity BN', () => {
    const p = initParams(g, new TestRng(3));
    const k = p.get('s3b1.conv2/kernel')!.data; // 3×3×64×64
    const mean = k.reduce((s, v) => s + v, 0) / k.length;
    const std = Math.sqrt(k.reduce((s, v) => s + (v - mean) ** 2, 0) / k.length);
    expect(Math.abs(mean)).toBeLessThan(0.005);
    expect(std / Math.sqrt(2 / (9 * 64))).toBeCloseTo(1, 1);
    const fc = p.get('fc/kernel')!.data;
    const bound = 1 / Math.sqrt(64);
    expect(Math.max(...fc.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...fc.map(Math.abs))).toBeGreaterThan(0.8 * bound);
    expect([...p.get('s1b0.bn1/gamma')!.data].every((v) => v === 1)).toBe(true);
    expect([...p.get('s1b0.bn1/variance')!.data].every((v) => v === 1)).toBe(true);
    expect([...p.get('s1b0.bn1/beta')!.data, ...p.get('s1b0.bn1/mean')!.data].every((v) => v === 0)).toBe(true);
    expect(p.has('s1b0.conv1/bias')).toBe(false);
  });
  it('checkParams names a missing or misshapen parameter', () => {
    const p = initParams(g, new TestRng(4));
    p.delete('fc/bias');
    expect(() => checkParams(g, p)).toThrow(/"fc\/bias" is missing/);
    p.set('fc/bias', { shape: [3], data: new Float32Array(3) });
    expect(() => checkParams(g, p)).toThrow(/"fc\/bias" has shape \[3\], expected \[10\]/);
  });
});
