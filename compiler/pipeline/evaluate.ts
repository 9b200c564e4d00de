/**
 * The evaluation protocol of docs/fusiondistill.md: accuracy of one model on the test set
 * at each level of each degradation's range (the level fixed for the whole pass, one fixed
 * seed per level), the mean per degradation, the mean of the four, and clean accuracy.
 * Models are run through a {@link Classifier}; {@link onnxClassifier} runs the exported
 * ONNX file in onnxruntime-node, so what is measured is what ships.
 */
import { availableParallelism } from 'node:os';
import type { LabelledImages } from '../data/types.ts';
import { DEGRADATION_KINDS, type AccuracyReport, type DegradationKind } from '../../shared/manifest.ts';
import { degradeBatch } from '../../shared/degrade.ts';
import { batchToNCHW } from '../../shared/preprocess.ts';
import { Rng } from '../../shared/rng.ts';
import { evaluationLevels, type DegradationRanges, type EvaluationConfig } from './config.ts';

/** Logits (n × classes, row-major) for n normalized NCHW images. */
export type Classifier = (input: Float32Array, dims: { n: number; c: number; h: number; w: number }) => Promise<Float32Array>;

export interface EvalPoint {
  /** `clean`: the undegraded test set. */
  kind: DegradationKind | 'clean';
  level: number | null;
  correct: number;
  samples: number;
  accuracy: number;
}

/** Accuracy in [0, 1]; null for what was not evaluated. */
export interface EvalSummary {
  clean: number | null;
  jpeg: number | null;
  blur: number | null;
  awgn: number | null;
  saltpepper: number | null;
  /** Mean of the four degradation cells (null unless all four were evaluated). */
  degradedMean: number | null;
  samples: number;
}

export interface EvalResult {
  points: EvalPoint[];
  summary: EvalSummary;
}

/** The manifest's accuracy record; needs a full evaluation (clean and all four degradations). */
export function toAccuracyReport(summary: EvalSummary): AccuracyReport {
  const { clean, jpeg, blur, awgn, saltpepper, degradedMean, samples } = summary;
  if (clean === null || jpeg === null || blur === null || awgn === null || saltpepper === null || degradedMean === null) {
    throw new Error('toAccuracyReport: the evaluation did not cover clean images and all four degradations');
  }
  return { clean, jpeg, blur, awgn, saltpepper, degradedMean, samples };
}

export interface EvaluateOptions {
  /** Level ranges of the degradations evaluated. */
  ranges: Partial<DegradationRanges>;
  evaluation: EvaluationConfig;
  quick: boolean;
  /** Degradations to evaluate (default all four) and whether to evaluate clean images (default true). */
  kinds?: readonly DegradationKind[];
  clean?: boolean;
  mean: readonly number[];
  std: readonly number[];
  /** Called after each level (for progress lines). */
  onPoint?: (point: EvalPoint) => void;
}

/** The seed of one (degradation, level) pass: fixed, and independent of every other pass. */
export function levelRng(seed: number, kind: DegradationKind, level: number): Rng {
  return new Rng(seed).fork(1 + DEGRADATION_KINDS.indexOf(kind) * 1000 + level);
}

export function argmaxCorrect(logits: Float32Array, labels: ArrayLike<number>, offset: number, n: number, classes: number): number {
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (logits[i * classes + j]! > logits[i * classes + best]!) best = j;
    if (best === labels[offset + i]) correct++;
  }
  return correct;
}

/** Correct answers of each classifier on the first `count` of `images`, batch by batch. */
async function correctOn(classifiers: readonly Classifier[], images: Uint8Array, test: LabelledImages, count: number, opts: EvaluateOptions): Promise<number[]> {
  const { height: h, width: w, channels: c } = test;
  const per = h * w * c;
  const classes = test.classNames.length;
  const correct = classifiers.map(() => 0);
  for (let start = 0; start < count; start += opts.evaluation.batchSize) {
    const n = Math.min(opts.evaluation.batchSize, count - start);
    const input = batchToNCHW(images.subarray(start * per, (start + n) * per), n, h, w, c, opts);
    for (const [m, classify] of classifiers.entries()) {
      const logits = await classify(input, { n, c, h, w });
      if (logits.length !== n * classes) throw new Error(`evaluate: the model returned ${logits.length} logits for ${n} images of ${classes} classes`);
      correct[m]! += argmaxCorrect(logits, test.labels, start, n, classes);
    }
  }
  return correct;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function evaluate(classify: Classifier, test: LabelledImages, opts: EvaluateOptions): Promise<EvalResult> {
  return (await evaluateAll([classify], test, opts))[0]!;
}

/**
 * The protocol for several models on the same images: each pass degrades the test images
 * once and runs every model on them, so a subtask is compared with the unpruned model (and
 * its baselines) on identical inputs at the cost of one degradation. Each model's result is
 * what evaluate() gives it alone.
 */
export async function evaluateAll(classifiers: readonly Classifier[], test: LabelledImages, opts: EvaluateOptions): Promise<EvalResult[]> {
  const limit = opts.quick ? opts.evaluation.quick.samples : opts.evaluation.samples;
  const count = Math.min(test.count, limit ?? test.count);
  if (count === 0) throw new Error(`evaluate: the ${test.name} ${test.split} set is empty`);
  const { height: h, width: w, channels: c } = test;
  const images = test.images.subarray(0, count * h * w * c);
  const points: EvalPoint[][] = classifiers.map(() => []);
  const pass = async (kind: EvalPoint['kind'], level: number | null, degraded: Uint8Array) => {
    const correct = await correctOn(classifiers, degraded, test, count, opts);
    for (const [m, ps] of points.entries()) {
      const p = { kind, level, correct: correct[m]!, samples: count, accuracy: correct[m]! / count };
      ps.push(p);
      if (m === 0) opts.onPoint?.(p);
    }
  };

  if (opts.clean ?? true) await pass('clean', null, images);
  const kinds = opts.kinds ?? DEGRADATION_KINDS;
  for (const kind of DEGRADATION_KINDS) {
    if (!kinds.includes(kind)) continue;
    const range = opts.ranges[kind];
    if (!range) throw new Error(`evaluate: no level range for ${kind}`);
    for (const level of evaluationLevels(range, opts.evaluation, opts.quick)) {
      await pass(kind, level, degradeBatch(images, count, h, w, c, kind, new Uint8Array(count).fill(level), levelRng(opts.evaluation.seed, kind, level)));
    }
  }
  return points.map((ps) => ({ points: ps, summary: summarize(ps, count, kinds) }));
}

function summarize(points: readonly EvalPoint[], samples: number, kinds: readonly DegradationKind[]): EvalSummary {
  const summary: EvalSummary = { clean: null, jpeg: null, blur: null, awgn: null, saltpepper: null, degradedMean: null, samples };
  for (const p of points) if (p.kind === 'clean') summary.clean = p.accuracy;
  for (const kind of DEGRADATION_KINDS) {
    const accs = points.filter((p) => p.kind === kind).map((p) => p.accuracy);
    if (accs.length > 0) summary[kind] = mean(accs);
  }
  if (DEGRADATION_KINDS.every((k) => kinds.includes(k))) summary.degradedMean = mean(DEGRADATION_KINDS.map((k) => summary[k]!));
  return summary;
}

/**
 * Runs an exported model (input `input`, NCHW float; output `logits`) in onnxruntime-node,
 * on every core by default: at the evaluation's batch of 250, 2 intra-op threads ran
 * ResNet-20 at 1.9–2.0× one thread here, with the same logits.
 */
export async function onnxClassifier(model: Uint8Array | string, threads = availableParallelism()): Promise<{ classify: Classifier; close(): Promise<void> }> {
  const ort = await import('onnxruntime-node');
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = typeof model === 'string'
      ? await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1 })
      : await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  } catch (err) {
    throw new Error(`cannot load ONNX model ${typeof model === 'string' ? model : '(bytes)'}: ${(err as Error).message}`);
  }
  const classify: Classifier = async (input, { n, c, h, w }) => {
    const out = await session.run({ input: new ort.Tensor('float32', input, [n, c, h, w]) });
    const logits = out.logits;
    if (!logits) throw new Error('the ONNX model has no output named "logits"');
    return logits.data as Float32Array;
  };
  return { classify, close: () => session.release() };
}

/** Median single-image latency (ms) in onnxruntime-node on one thread, after one warm-up run: the manifest's `latencyMs`. */
export async function medianLatencyMs(onnx: Uint8Array, dims: { c: number; h: number; w: number }, runs = 30): Promise<number> {
  const model = await onnxClassifier(onnx, 1);
  try {
    const input = new Float32Array(dims.c * dims.h * dims.w);
    await model.classify(input, { n: 1, ...dims });
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await model.classify(input, { n: 1, ...dims });
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(runs / 2)]!;
  } finally {
    await model.close();
  }
}
