/**
 * The one configuration the resume tests train, in-process and in a child process: every
 * part of a FusionDistill step (augmentation, degradations, a frozen teacher on the clean
 * images, feature and logit distillation) so that all of it must replay exactly.
 */
import type { Engine } from '../../compiler/engine/types.ts';
import type { TrainOptions } from '../../compiler/train/loop.ts';
import { tinyData, tinyGraph, tinyParams } from './helpers.ts';

export function resumeTestOptions(engine: Engine): TrainOptions {
  const graph = tinyGraph(8, 1, 3);
  return {
    graph,
    params: tinyParams(graph, 4),
    train: tinyData(96, 21, 'train'),
    val: tinyData(32, 22, 'val'),
    epochs: 3,
    batchSize: 16,
    optimizer: { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    schedule: { kind: 'onecycle', peak: 0.1, pctStart: 0.15 },
    augment: { flip: true, pad: 2, cutout: 3 },
    degrade: { kinds: ['awgn', 'saltpepper'] },
    objective: { ce: 1, feature: { weight: 0.5, groups: 1 }, distill: { weight: 0.5, temperature: 2, groups: 1 } },
    teachers: { models: [{ graph, params: tinyParams(graph, 5) }], input: 'clean' },
    normalize: { mean: [0.4], std: [0.3] },
    engine,
    seed: 7,
    checkpointEverySteps: 2,
  };
}
