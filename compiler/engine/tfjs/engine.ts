/**
 * The `tfjs` engine: the graph interpreted by tfjs (compiler/nn/forward.ts) under its
 * gradient tape, with the TypeScript optimizers (compiler/train/optimizers.ts). The second,
 * independent interpreter of the model graph: the ort engine's generated gradients are
 * checked against it, and it runs where a user has @tensorflow/tfjs-node[-gpu].
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TapRunner } from '../../catro/catro.ts';
import type { Graph, HostTensor, ParamStore } from '../../graph/ir.ts';
import { checkParams, inputLayer } from '../../graph/shapes.ts';
import { forward, fromVariables, type TensorParams, toVariables, updateRunningStats, type BnBatchStats } from '../../nn/forward.ts';
import { type BackendName, initBackend, type InitOptions } from '../../tf/backend.ts';
import { validateObjective } from '../../train/objective.ts';
import { createOptimizer, type OptimizerState } from '../../train/optimizers.ts';
import type { BnStatistics, Engine, HostBatch, Runner, StatisticsRunner, StepResult, Trainer, TrainerSpec } from '../types.ts';
import { objectiveLoss } from './losses.ts';

export interface TfjsEngineOptions extends InitOptions {
  /** tfjs backend (compiler/tf/backend.ts); default `auto`. */
  backend?: BackendName;
}

export async function createTfjsEngine(opts: TfjsEngineOptions = {}): Promise<Engine> {
  const backend = await initBackend(opts.backend ?? 'auto', opts);
  return {
    name: 'tfjs',
    description: `tfjs ${backend}`,
    identity: `tfjs/${backend}`,
    trainer: (spec) => createTfjsTrainer(spec),
    runner: async (graph, params) => tfjsRunner(graph, params),
    statistics: async (graph, params) => tfjsStatistics(graph, params),
  };
}

/** CATRO's TapRunner on the current tfjs backend (no backend set-up: tests and studies choose theirs). */
export const tfjsTapRunner: TapRunner = (graph, params) => {
  const runner = tfjsRunner(graph, params);
  return { run: runner.run, dispose: () => void runner.dispose() };
};

const toTensors = (params: ParamStore): TensorParams => new Map([...params].map(([k, t]) => [k, tf.tensor(t.data, t.shape, 'float32')]));
const disposeAll = (m: Map<string, tf.Tensor>): void => m.forEach((t) => t.dispose());

/** Evaluation-mode forward with taps, on the current tfjs backend. */
export function tfjsRunner(graph: Graph, params: ParamStore): Runner {
  checkParams(graph, params);
  const input = inputLayer(graph).shape;
  const vars = toTensors(params);
  return {
    async run(x, n, outputs) {
      const outs = tf.tidy(() => {
        const { taps } = forward(graph, vars, tf.tensor4d(x, [n, ...input]), { training: false, taps: outputs });
        return outputs.map((t) => taps.get(t)!);
      });
      const result = new Map<string, HostTensor>();
      try {
        // Asynchronous reads: webgpu in Node cannot read GPU buffers synchronously.
        for (let i = 0; i < outputs.length; i++) result.set(outputs[i]!, { shape: [...outs[i]!.shape], data: (await outs[i]!.data()) as Float32Array });
      } finally {
        outs.forEach((t) => t.dispose());
      }
      return result;
    },
    async dispose() {
      disposeAll(vars);
    },
  };
}

function tfjsStatistics(graph: Graph, params: ParamStore): StatisticsRunner {
  checkParams(graph, params);
  const input = inputLayer(graph).shape;
  const vars = toTensors(params);
  return {
    async run(x, n) {
      const stats = tf.tidy(() => {
        const { bnBatchStats } = forward(graph, vars, tf.tensor4d(x, [n, ...input]), { training: true });
        return [...bnBatchStats].map(([name, s]) => [name, s.mean, s.variance] as const);
      });
      const out: BnStatistics = new Map();
      try {
        for (const [name, mean, variance] of stats) out.set(name, { mean: (await mean.data()) as Float32Array, variance: (await variance.data()) as Float32Array });
      } finally {
        for (const [, mean, variance] of stats) tf.dispose([mean, variance]);
      }
      return out;
    },
    async dispose() {
      disposeAll(vars);
    },
  };
}

async function createTfjsTrainer(spec: TrainerSpec): Promise<Trainer> {
  const { graph, objective } = spec;
  validateObjective(objective, spec.teachers, `trainer ${graph.arch}`);
  checkParams(graph, spec.params);
  const input = inputLayer(graph).shape;
  const optimizer = createOptimizer(spec.optimizer);
  let vars = toVariables(spec.params);
  const teachers = (spec.teachers?.models ?? []).map((t) => ({ graph: t.graph, vars: toTensors(t.params) }));
  const feature = (objective.feature?.weight ?? 0) > 0 ? graph.feature : undefined;
  const trainable = () => new Map([...vars].filter(([, v]) => v.trainable));

  /** Teacher outputs for the whole batch: teacher k on sub-batch k (or one teacher on all). */
  const targets = (x: tf.Tensor4D): { logits?: tf.Tensor2D; feature?: tf.Tensor } => {
    if (teachers.length === 0) return {};
    return tf.tidy(() => {
      const parts = teachers.length === 1 ? [x] : (tf.split(x, teachers.length, 0) as tf.Tensor4D[]);
      const outs = teachers.map((t, k) => forward(t.graph, t.vars, parts[k]!, { training: false, taps: feature ? [t.graph.feature!] : [] }));
      const logits = tf.concat(outs.map((o) => o.logits)) as tf.Tensor2D;
      return { logits, feature: feature ? tf.concat(outs.map((o, k) => o.taps.get(teachers[k]!.graph.feature!)!)) : undefined };
    });
  };

  return {
    async step(batch: HostBatch, lr: number): Promise<StepResult> {
      const shape: [number, number, number, number] = [batch.n, ...input];
      const x = tf.tensor4d(batch.x, shape);
      const teacherX = spec.teachers?.input === 'clean' && batch.clean ? tf.tensor4d(batch.clean, shape) : undefined;
      if (spec.teachers?.input === 'clean' && !batch.clean) throw new Error('trainer: the teachers look at the clean images, but the batch has none (keepClean)');
      const labels = tf.tensor1d(batch.labels, 'int32');
      const t = targets(teacherX ?? x);
      let stats = new Map<string, BnBatchStats>();
      let predicted: tf.Tensor | undefined;
      const train = trainable();
      const keyOfVar = new Map([...train].map(([k, v]) => [v.name, k]));
      try {
        const { value, grads } = tf.variableGrads(() => {
          const out = forward(graph, vars, x, { training: true, taps: feature ? [feature] : [] });
          // The tape disposes everything but the loss; keep what is needed after it.
          for (const s of out.bnBatchStats.values()) {
            tf.keep(s.mean);
            tf.keep(s.variance);
          }
          stats = out.bnBatchStats;
          predicted = tf.keep(tf.argMax(out.logits, 1));
          return objectiveLoss(objective, { logits: out.logits, feature: feature ? out.taps.get(feature) : undefined }, labels, t);
        }, [...train.values()]);
        const byKey = new Map<string, tf.Tensor>();
        for (const [name, g] of Object.entries(grads)) byKey.set(keyOfVar.get(name)!, g);
        optimizer.apply(train, byKey, lr);
        tf.dispose(Object.values(grads));
        updateRunningStats(graph, vars, stats);
        const loss = (await value.data())[0]!;
        value.dispose();
        const pred = (await predicted!.data()) as Int32Array;
        let correct = 0;
        for (let i = 0; i < batch.n; i++) if (pred[i] === batch.labels[i]) correct++;
        return { loss, correct };
      } finally {
        tf.dispose([x, labels, ...(teacherX ? [teacherX] : []), ...(predicted ? [predicted] : []), ...(t.logits ? [t.logits] : []), ...(t.feature ? [t.feature] : [])]);
      }
    },
    params: () => fromVariables(vars),
    optimizerState: () => optimizer.getState(),
    async load(params: ParamStore, state: OptimizerState) {
      checkParams(graph, params);
      disposeAll(vars);
      vars = toVariables(params);
      optimizer.setState(state);
    },
    async dispose() {
      disposeAll(vars);
      optimizer.dispose();
      for (const t of teachers) disposeAll(t.vars);
    },
  };
}
