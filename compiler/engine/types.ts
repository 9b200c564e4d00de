/**
 * A training engine: what executes the model graph. The training loop, the compile's
 * stages, BN recalibration, CATRO's feature taps and the subtask fine-tuning all go
 * through this interface, so they run the same on every engine:
 *
 * - `ort` (default): the graph emits its own training step as ONNX
 *   (compiler/engine/ort/training-graph.ts) and onnxruntime-node runs it, on the CPU with
 *   every core, on its bundled WebGPU provider, or on CUDA where installed.
 * - `tfjs`: the graph interpreted by tfjs (compiler/nn/forward.ts) under its gradient
 *   tape, on the wasm, webgpu, cpu or (if installed) tensorflow backend.
 *
 * Host-side tensors are NHWC and parameters are kept as the graph IR defines them
 * (compiler/graph/ir.ts), whatever layout an engine uses inside.
 */
import type { Graph, HostTensor, ParamStore } from '../graph/ir.ts';
import type { Objective, TeacherSpec } from '../train/objective.ts';
import type { OptimizerConfig, OptimizerState } from '../train/optimizers.ts';

export type EngineName = 'ort' | 'tfjs';
export const ENGINE_NAMES: readonly EngineName[] = ['ort', 'tfjs'];

/** One training batch as the batch pipeline prepares it. */
export interface HostBatch {
  n: number;
  /** Normalized NHWC float32: what the student sees. */
  x: Float32Array;
  /** The clean image under the same flip and crop (when teachers look at it). */
  clean?: Float32Array;
  labels: Int32Array;
}

export interface StepResult {
  /** The objective's value on this batch (before the update). */
  loss: number;
  /** Images whose argmax logit was the label. */
  correct: number;
}

export interface TrainerSpec {
  graph: Graph;
  /** Starting parameters, running statistics included. */
  params: ParamStore;
  optimizer: OptimizerConfig;
  objective: Objective;
  teachers?: TeacherSpec;
  /** Images per step (every step has exactly this many). */
  batchSize: number;
}

/** Holds a model's parameters and optimizer state between steps. */
export interface Trainer {
  step(batch: HostBatch, lr: number): Promise<StepResult>;
  /** Current parameters and running statistics (a copy, in the IR's layout). */
  params(): Promise<ParamStore>;
  optimizerState(): Promise<OptimizerState>;
  /** Replaces parameters and optimizer state (to resume from a checkpoint). */
  load(params: ParamStore, state: OptimizerState): Promise<void>;
  dispose(): Promise<void>;
}

/** Evaluation-mode inference with layer taps. */
export interface Runner {
  /**
   * Runs `n` images (normalized NHWC) and returns the named layers' outputs as NHWC (or
   * [n, F]) host tensors; the logits are the output of `graph.output`.
   */
  run(x: Float32Array, n: number, outputs: string[]): Promise<Map<string, HostTensor>>;
  dispose(): Promise<void>;
}

export interface Engine {
  readonly name: EngineName;
  /** What runs where, for logs and reports: e.g. "ort cpu, 2 replicas × 1 thread". */
  readonly description: string;
  /**
   * Everything that changes the numbers a training run produces (engine, provider,
   * replicas): part of checkpoint fingerprints and stage cache keys.
   */
  readonly identity: string;
  trainer(spec: TrainerSpec): Promise<Trainer>;
  /** A runner for `graph`; `outputs` are the layers `run` may be asked for. */
  runner(graph: Graph, params: ParamStore, outputs?: string[]): Promise<Runner>;
  /** Training-mode forward passes that report every BN layer's batch statistics (no update). */
  statistics(graph: Graph, params: ParamStore): Promise<StatisticsRunner>;
}

/** Per BN layer, the batch mean and biased variance of its input, by layer name. */
export type BnStatistics = Map<string, { mean: Float32Array; variance: Float32Array }>;

export interface StatisticsRunner {
  /** `n` normalized NHWC images in; each BN layer normalizes by this batch's statistics. */
  run(x: Float32Array, n: number): Promise<BnStatistics>;
  dispose(): Promise<void>;
}
