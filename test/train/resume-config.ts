/** The one configuration the resume tests train, in-process and in a child process. */
import type { TrainOptions } from '../../compiler/train/loop.ts';
import { tinyData, tinyGraph, tinyParams } from './helpers.ts';

export function resumeTestOptions(): TrainOptions {
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
    keepClean: true,
    normalize: { mean: [0.4], std: [0.3] },
    seed: 7,
    checkpointEverySteps: 2,
  };
}
