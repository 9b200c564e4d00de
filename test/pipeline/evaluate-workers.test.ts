import { describe, expect, it } from 'vitest';
import { buildGraph } from '../../compiler/graph/arch.ts';
import { initParams } from '../../compiler/graph/builders.ts';
import { exportOnnx } from '../../compiler/onnx/export.ts';
import type { EvaluationConfig } from '../../compiler/pipeline/config.ts';
import { evaluate, onnxClassifier } from '../../compiler/pipeline/evaluate.ts';
import { evaluateModels, evaluationPasses } from '../../compiler/pipeline/evaluate-workers.ts';
import type { LabelledImages } from '../../compiler/data/types.ts';
import { Rng } from '../../shared/rng.ts';

const ranges = { jpeg: { min: 1, max: 101 }, blur: { min: 0, max: 50 }, awgn: { min: 0, max: 50 }, saltpepper: { min: 0, max: 25 } };
const evaluation: EvaluationConfig = { step: 25, seed: 4, batchSize: 7, quick: { levels: 3, samples: 10 } };
const norm = { mean: [0.3], std: [0.3] };

/** 12×12 grey noise images with arbitrary labels: the models' answers are what is compared. */
function testSet(count: number): LabelledImages {
  const rng = new Rng(9);
  const images = new Uint8Array(count * 144).map(() => Math.floor(rng.float() * 256));
  const labels = new Uint16Array(count).map((_, i) => i % 3);
  return { name: 'noise', split: 'test', count, height: 12, width: 12, channels: 1, images, labels, classNames: ['a', 'b', 'c'] };
}

function model(seed: number): Uint8Array {
  const graph = buildGraph({ arch: 'resnet8', width: 0.25, input: [12, 12, 1], classes: 3, shortcut: 'projection' });
  return exportOnnx(graph, initParams(graph, new Rng(seed)), { labels: ['a', 'b', 'c'], ...norm });
}

describe('evaluateModels: the protocol for several models, its passes spread over workers', () => {
  it('gives each model exactly the points evaluate() gives it alone, with 1 or 2 workers, in evaluate()\'s order', async () => {
    const test = testSet(23);
    const models = [model(1), model(2), model(3)];
    const opts = { ranges, evaluation, quick: false, ...norm };
    const alone = [];
    for (const m of models) {
      const c = await onnxClassifier(m);
      alone.push(await evaluate(c.classify, test, opts));
      await c.close();
    }
    // The three random models disagree somewhere, so a mix-up of models would show.
    expect(new Set(alone.map((r) => JSON.stringify(r.points.map((p) => p.correct)))).size).toBeGreaterThan(1);
    for (const workers of [1, 2]) {
      const passes: number[] = [];
      const together = await evaluateModels(models, test, { ...opts, workers, onPass: (points) => passes.push(points.length) });
      expect(together).toEqual(alone);
      expect(passes).toEqual(evaluationPasses(opts).map(() => 3));
    }
  }, 60_000);

  it('evaluates the configured sample count, and the quick grid', async () => {
    const [r] = await evaluateModels([model(1)], testSet(23), { ranges, evaluation: { ...evaluation, samples: 11 }, quick: true, ...norm, workers: 2 });
    expect(r!.summary.samples).toBe(10);
    expect(r!.points.filter((p) => p.kind === 'jpeg').map((p) => p.level)).toEqual([1, 51, 101]);
  }, 60_000);

  it('names a model that cannot be loaded', async () => {
    await expect(evaluateModels([new Uint8Array([1, 2, 3])], testSet(5), { ranges, evaluation, quick: true, ...norm, workers: 1 })).rejects.toThrow(/cannot load ONNX model/);
  }, 60_000);
});
