/** Tiny graphs and data sets for trainer tests: seconds on the cpu backend. */
import type { LabelledImages } from '../../compiler/data/types.ts';
import { initParams } from '../../compiler/graph/builders.ts';
import type { Graph, ParamStore } from '../../compiler/graph/ir.ts';
import { Rng } from '../../shared/rng.ts';

/** conv3×3(4) → BN → ReLU → conv3×3 stride 2 (6) → BN → ReLU → global pool → dense. */
export function tinyGraph(size = 8, channels: 1 | 3 = 1, classes = 3): Graph {
  return {
    arch: 'tiny-test',
    output: 'fc',
    feature: 'relu2',
    layers: [
      { kind: 'input', name: 'input', shape: [size, size, channels] },
      { kind: 'conv', name: 'conv1', input: 'input', filters: 4, kernel: 3, stride: 1, pad: 1, bias: false },
      { kind: 'bn', name: 'bn1', input: 'conv1', eps: 1e-5, momentum: 0.9 },
      { kind: 'relu', name: 'relu1', input: 'bn1' },
      { kind: 'conv', name: 'conv2', input: 'relu1', filters: 6, kernel: 3, stride: 2, pad: 1, bias: true },
      { kind: 'bn', name: 'bn2', input: 'conv2', eps: 1e-5, momentum: 0.9 },
      { kind: 'relu', name: 'relu2', input: 'bn2' },
      { kind: 'globalavgpool', name: 'gap', input: 'relu2' },
      { kind: 'dense', name: 'fc', input: 'gap', units: classes },
    ],
  };
}

export function tinyParams(graph: Graph, seed = 1): ParamStore {
  return initParams(graph, new Rng(seed));
}

/**
 * A learnable toy set: class k images are bright in their top k + 1 bands (so even a
 * globally pooled feature separates the classes), plus noise. Deterministic for a seed.
 */
export function tinyData(count: number, seed: number, split = 'train', size = 8, channels: 1 | 3 = 1, classes = 3): LabelledImages {
  const rng = new Rng(seed);
  const pixels = size * size * channels;
  const images = new Uint8Array(count * pixels);
  const labels = new Uint16Array(count);
  const band = Math.max(1, Math.floor(size / classes));
  for (let i = 0; i < count; i++) {
    const k = rng.int(0, classes - 1);
    labels[i] = k;
    for (let y = 0; y < size; y++) {
      const inBand = Math.floor(y / band) <= k;
      for (let x = 0; x < size * channels; x++) images[i * pixels + y * size * channels + x] = (inBand ? 160 : 40) + rng.int(0, 60);
    }
  }
  return {
    name: 'toy',
    split,
    count,
    height: size,
    width: size,
    channels,
    images,
    labels,
    classNames: Array.from({ length: classes }, (_, k) => `c${k}`),
  };
}
