/**
 * The evaluation protocol of evaluate.ts for several exported models at once, with its
 * passes (clean, then every level of every degradation) spread over worker threads.
 *
 * Why: a subtask is judged beside the unpruned model restricted to its classes, before and
 * after fine-tuning, and against its baselines, all on the same test images. One pass
 * degrades the images once and runs every model on them; the passes are independent (each
 * level has its own seed, `levelRng`), so workers take them in any order and the figures are
 * those `evaluate()` gives one model at a time, bit for bit, whatever the worker count.
 * onnxruntime-node's intra-op threads do not speed these small convolutions up (1.0× with 2
 * threads at batch 250, measured on ResNet-20); one single-threaded session per core does.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { DEGRADATION_KINDS, type DegradationKind } from '../../shared/manifest.ts';
import type { LabelledImages } from '../data/types.ts';
import { startTsWorker } from '../train/ts-worker.ts';
import { evaluationLevels } from './config.ts';
import type { EvalPoint, EvalResult, EvalSummary, EvaluateOptions } from './evaluate.ts';

/** One pass of the protocol: the test images clean, or at one level of one degradation. */
export interface EvalPass {
  kind: DegradationKind | 'clean';
  level: number | null;
}

/** The passes `evaluate()` makes, in its order. */
export function evaluationPasses(opts: Pick<EvaluateOptions, 'ranges' | 'evaluation' | 'quick' | 'kinds' | 'clean'>): EvalPass[] {
  const passes: EvalPass[] = [];
  if (opts.clean ?? true) passes.push({ kind: 'clean', level: null });
  const kinds = opts.kinds ?? DEGRADATION_KINDS;
  for (const kind of DEGRADATION_KINDS) {
    if (!kinds.includes(kind)) continue;
    const range = opts.ranges[kind];
    if (!range) throw new Error(`evaluate: no level range for ${kind}`);
    for (const level of evaluationLevels(range, opts.evaluation, opts.quick)) passes.push({ kind, level });
  }
  return passes;
}

/** What a worker needs: the models, the test images it evaluates and the protocol's settings. */
export interface EvalWorkerData {
  models: Uint8Array[];
  test: LabelledImages;
  count: number;
  batchSize: number;
  seed: number;
  mean: readonly number[];
  std: readonly number[];
}

export interface EvalPassRequest {
  id: number;
  pass: EvalPass;
}

/** Correct answers per model on one pass. */
export type EvalPassReply = { id: number; correct: number[] } | { id: number; error: string };

export interface EvaluateModelsOptions extends Omit<EvaluateOptions, 'onPoint'> {
  /** Worker threads, one single-threaded session per model in each (default: every core). */
  workers?: number;
  /** Called after each pass, with one point per model. */
  onPass?: (points: EvalPoint[]) => void;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Per-degradation means, their mean and clean accuracy, from one model's points. */
export function summarize(points: readonly EvalPoint[], samples: number): EvalSummary {
  const summary: EvalSummary = { clean: null, jpeg: null, blur: null, awgn: null, saltpepper: null, degradedMean: null, samples };
  for (const p of points) if (p.kind === 'clean') summary.clean = p.accuracy;
  for (const kind of DEGRADATION_KINDS) {
    const accs = points.filter((p) => p.kind === kind).map((p) => p.accuracy);
    if (accs.length > 0) summary[kind] = mean(accs);
  }
  if (DEGRADATION_KINDS.every((k) => summary[k] !== null)) summary.degradedMean = mean(DEGRADATION_KINDS.map((k) => summary[k]!));
  return summary;
}

/**
 * Evaluates each exported model (input `input`, NCHW; output `logits`) on `test` by the
 * protocol, sharing every degraded pass among the models; one result per model, in order.
 */
export async function evaluateModels(models: Uint8Array[], test: LabelledImages, opts: EvaluateModelsOptions): Promise<EvalResult[]> {
  if (models.length === 0) return [];
  const limit = opts.quick ? opts.evaluation.quick.samples : opts.evaluation.samples;
  const count = Math.min(test.count, limit ?? test.count);
  if (count === 0) throw new Error(`evaluate: the ${test.name} ${test.split} set is empty`);
  const passes = evaluationPasses(opts);
  const per = test.height * test.width * test.channels;
  // Only the images evaluated travel to the workers (a copy each).
  const data: EvalWorkerData = {
    models,
    test: { ...test, count, images: test.images.slice(0, count * per), labels: test.labels.slice(0, count) },
    count,
    batchSize: opts.evaluation.batchSize,
    seed: opts.evaluation.seed,
    mean: opts.mean,
    std: opts.std,
  };
  const workerCount = Math.max(1, Math.min(opts.workers ?? availableParallelism(), passes.length));
  const workers = await Promise.all(Array.from({ length: workerCount }, () => startTsWorker(new URL('./evaluate-worker.ts', import.meta.url), data)));
  const correct: number[][] = new Array(passes.length);
  try {
    let next = 0;
    const drain = async (worker: Worker): Promise<void> => {
      while (next < passes.length) {
        const id = next++;
        correct[id] = await runPass(worker, { id, pass: passes[id]! });
        opts.onPass?.(models.map((_, m) => point(passes[id]!, correct[id]![m]!, count)));
      }
    };
    await Promise.all(workers.map(drain));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return models.map((_, m) => {
    const points = passes.map((pass, i) => point(pass, correct[i]![m]!, count));
    return { points, summary: summarize(points, count) };
  });
}

function point(pass: EvalPass, correct: number, samples: number): EvalPoint {
  return { ...pass, correct, samples, accuracy: correct / samples };
}

function runPass(worker: Worker, req: EvalPassRequest): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: EvalPassReply) => {
      if (msg.id !== req.id) return;
      cleanup();
      if ('error' in msg) reject(new Error(`evaluation worker: ${msg.error}`));
      else resolve(msg.correct);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onExit = (code: number) => onError(new Error(`evaluation worker exited (code ${code})`));
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage(req);
  });
}
