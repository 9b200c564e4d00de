/**
 * The two engines on a whole model: a short training run of a tiny ResNet through the
 * training loop from the same initialisation and seed; distillation from frozen teachers
 * (each engine running the teachers its own way); and evaluation-mode taps and BN batch
 * statistics on the same parameters.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Engine, EngineName } from '../../compiler/engine/types.ts';
import { initParams, resnet } from '../../compiler/graph/builders.ts';
import type { Graph, ParamStore } from '../../compiler/graph/ir.ts';
import { inferShapes } from '../../compiler/graph/shapes.ts';
import { type TrainResult, train } from '../../compiler/train/loop.ts';
import { Rng } from '../../shared/rng.ts';
import { tinyData } from '../train/helpers.ts';
import { TEST_ENGINES, testEngine } from './engines.ts';
import { cloneBatch, randomBatch, randomParams, relativeError } from './helpers.ts';

// Width 0.25 (4/8/16 channels): tfjs's stock cpu conv gradients make width 0.5 a second a step.
const graph = resnet({ depth: 8, width: 0.25, input: [12, 12, 1], classes: 4 });
const normalize = { mean: [0.4], std: [0.3] };

const engines = new Map<EngineName, Engine>();
const runs = new Map<EngineName, TrainResult>();
let initial: ParamStore;

beforeAll(async () => {
  for (const name of TEST_ENGINES) engines.set(name, await testEngine(name));
  initial = initParams(graph, new Rng(5));
  for (const [name, engine] of engines) {
    runs.set(
      name,
      await train({
        graph,
        params: initial,
        train: tinyData(64, 1, 'train', 12, 1, 4),
        val: tinyData(48, 2, 'val', 12, 1, 4),
        epochs: 2,
        batchSize: 16,
        optimizer: { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
        schedule: { kind: 'constant', lr: 0.1 },
        augment: { flip: true, pad: 1, cutout: 0 },
        normalize,
        engine,
        seed: 3,
      }),
    );
  }
});

describe('a short training run of a tiny ResNet on both engines', () => {
  it('learns on each engine', () => {
    for (const [name, r] of runs) {
      expect(r.history.map((h) => h.epoch), name).toEqual([0, 1]);
      expect(r.stats.steps, name).toBe(8);
      expect(r.history[1]!.trainLoss, name).toBeLessThan(r.history[0]!.trainLoss * 0.9);
    }
  });

  /*
   * Not bit-exact: the engines sum in different orders, so each step's gradients differ in
   * the last bits (~1e-6 relative; gradients.test.ts). Measured over this run: training and
   * validation losses within 1e-7 relative, parameters within 1e-6 of each tensor's max |p|; over 24 steps
   * of a wider ResNet still under 1e-6. 1e-4 leaves 100× for other CPUs' kernels, while a
   * wrong gradient rule, BN statistic or optimizer term moves these by 1e-2 or more.
   */
  it('both reach the same losses, accuracies and parameters within 1e-4', () => {
    const [ort, tfjs] = [runs.get('ort')!, runs.get('tfjs')!];
    ort.history.forEach((h, e) => {
      const t = tfjs.history[e]!;
      expect(Math.abs(h.trainLoss - t.trainLoss) / t.trainLoss, `epoch ${e}: train loss ${h.trainLoss} vs ${t.trainLoss}`).toBeLessThanOrEqual(1e-4);
      // Evaluation mode: this also compares the running statistics both engines kept.
      expect(Math.abs(h.valLoss! - t.valLoss!) / t.valLoss!, `epoch ${e}: validation loss ${h.valLoss} vs ${t.valLoss}`).toBeLessThanOrEqual(1e-4);
      expect(Math.abs(h.valAccuracy! - t.valAccuracy!), `epoch ${e}: validation accuracy`).toBeLessThanOrEqual(1 / 48);
    });
    expect([...ort.params.keys()].sort()).toEqual([...tfjs.params.keys()].sort());
    for (const [k, t] of tfjs.params) {
      expect(ort.params.get(k)!.shape, k).toEqual(t.shape);
      expect(relativeError(ort.params.get(k)!.data, t.data), k).toBeLessThanOrEqual(1e-4);
      // Not vacuous: every parameter and running statistic moved from its initial value.
      expect(relativeError(t.data, initial.get(k)!.data), `${k} moved`).toBeGreaterThan(1e-3);
    }
  });
});

describe('inference on the same parameters', () => {
  const shapes = inferShapes(graph);
  const taps = ['stem.relu', 's1b0.conv1', 's2b0.bn1', 's2b0.short.bn', 's3b0.add', graph.feature!, 'gap', graph.output];

  it('the runners return the same taps and logits, NHWC (or [n, F]) host tensors', async () => {
    const params = runs.get('ort')!.params;
    const batch = randomBatch(graph, 10, 7);
    const out = new Map<EngineName, Map<string, { shape: number[]; data: Float32Array }>>();
    for (const [name, engine] of engines) {
      const runner = await engine.runner(graph, params, taps);
      try {
        out.set(name, await runner.run(batch.x, batch.n, taps));
      } finally {
        await runner.dispose();
      }
    }
    for (const tap of taps) {
      const [a, b] = [out.get('ort')!.get(tap)!, out.get('tfjs')!.get(tap)!];
      expect(b.shape, tap).toEqual([10, ...shapes.get(tap)!]);
      expect(a.shape, tap).toEqual(b.shape);
      expect(relativeError(a.data, b.data), tap).toBeLessThanOrEqual(1e-5);
    }
  });

  it('engine.statistics(): the same batch mean and biased variance of every BN layer', async () => {
    const params = runs.get('ort')!.params;
    const batch = randomBatch(graph, 20, 8);
    const stats = new Map<EngineName, Awaited<ReturnType<Awaited<ReturnType<Engine['statistics']>>['run']>>>();
    for (const [name, engine] of engines) {
      const runner = await engine.statistics(graph, params);
      try {
        stats.set(name, await runner.run(batch.x, batch.n));
      } finally {
        await runner.dispose();
      }
    }
    const bns = graph.layers.filter((l) => l.kind === 'bn').map((l) => l.name);
    const [a, b] = [stats.get('ort')!, stats.get('tfjs')!];
    expect([...a.keys()].sort()).toEqual([...bns].sort());
    expect([...b.keys()].sort()).toEqual([...bns].sort());
    for (const layer of bns) {
      expect(relativeError(a.get(layer)!.mean, b.get(layer)!.mean), `${layer} mean`).toBeLessThanOrEqual(1e-5);
      expect(relativeError(a.get(layer)!.variance, b.get(layer)!.variance), `${layer} variance`).toBeLessThanOrEqual(1e-5);
      // These are this batch's statistics, not the running ones.
      expect(relativeError(b.get(layer)!.variance, params.get(`${layer}/variance`)!.data), `${layer} is not the running variance`).toBeGreaterThan(1e-3);
    }
  });
});

describe('distillation from frozen teachers, step for step', () => {
  /** A small student with a feature map to distil; the teachers are wider, with a feature of the same shape. */
  const student = (width: number): Graph => ({
    arch: `distill-${width}`,
    output: 'fc',
    feature: 'relu2',
    layers: [
      { kind: 'input', name: 'input', shape: [7, 6, 2] },
      { kind: 'conv', name: 'conv1', input: 'input', filters: width, kernel: 3, stride: 1, pad: 1, bias: false },
      { kind: 'bn', name: 'bn1', input: 'conv1', eps: 1e-5, momentum: 0.9 },
      { kind: 'relu', name: 'relu1', input: 'bn1' },
      { kind: 'conv', name: 'conv2', input: 'relu1', filters: 5, kernel: 3, stride: 2, pad: 1, bias: false },
      { kind: 'bn', name: 'bn2', input: 'conv2', eps: 1e-5, momentum: 0.9 },
      { kind: 'relu', name: 'relu2', input: 'bn2' },
      { kind: 'globalavgpool', name: 'gap', input: 'relu2' },
      { kind: 'dense', name: 'fc', input: 'gap', units: 3 },
    ],
  });

  it.each([1, 2])('%i teacher(s), one per group: the same losses and parameters (teachers on the clean images)', async (count) => {
    const graph = student(3);
    const teacherGraph = student(6);
    const params = randomParams(graph, 40);
    const spec = {
      graph,
      params,
      optimizer: { kind: 'radam', weightDecay: 1e-2 } as const,
      objective: { ce: 0.3, feature: { weight: 1, groups: count }, distill: { weight: 0.5, temperature: 2, groups: count } },
      teachers: { models: Array.from({ length: count }, (_, i) => ({ graph: teacherGraph, params: randomParams(teacherGraph, 41 + i) })), input: 'clean' as const },
      batchSize: 12,
    };
    const [a, b] = [await engines.get('ort')!.trainer(spec), await engines.get('tfjs')!.trainer(spec)];
    try {
      for (let t = 0; t < 3; t++) {
        const batch = { ...randomBatch(graph, 12, 50 + t), clean: randomBatch(graph, 12, 60 + t).x };
        const [ra, rb] = [await a.step(cloneBatch(batch), 0.05), await b.step(batch, 0.05)];
        expect(Math.abs(ra.loss - rb.loss) / rb.loss, `step ${t + 1}: loss ${ra.loss} vs ${rb.loss}`).toBeLessThanOrEqual(1e-5);
        const [pa, pb] = [await a.params(), await b.params()];
        // As in optimizers.test.ts: measured ≤ 2e-7 of max |p|.
        for (const [k, p] of pb) expect(relativeError(pa.get(k)!.data, p.data), `step ${t + 1}: ${k}`).toBeLessThanOrEqual(2e-6);
      }
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });
});
