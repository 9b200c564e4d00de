/**
 * The classification request, independent of HTTP: which classes were asked for, which model
 * answers them (fewest MACs covering them), and softmax scores over just those classes.
 */
import type { Manifest, ModelEntry } from '../shared/manifest.ts';
import { ClientError } from './decode.ts';

export interface ClassifyParams {
  classes?: string | string[] | number[];
  subtask?: string;
  model?: string;
  top_k?: string | number;
}

export interface ModelChoice {
  entry: ModelEntry;
  /** Output positions j of `entry` to score, in the model's order. */
  outputs: number[];
}

export interface Prediction {
  label: string;
  index: number;
  score: number;
}

export const MAX_TOP_K = 1000;

export function parseTopK(value: string | number | undefined): number {
  if (value === undefined || value === '') return 5;
  const n = typeof value === 'number' ? value : /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_TOP_K) {
    throw new ClientError(422, 'invalid_parameter', `top_k must be an integer from 1 to ${MAX_TOP_K}; got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Resolve `classes` (labels or indices, comma-separated or a list) to data-set class indices. */
export function parseClasses(value: ClassifyParams['classes'], labels: string[]): number[] | undefined {
  if (value === undefined) return undefined;
  const tokens = (Array.isArray(value) ? value.map(String) : value.split(',')).map((t) => t.trim());
  if (tokens.length === 0 || tokens.some((t) => t === '')) {
    throw new ClientError(422, 'invalid_parameter', 'classes is empty or has an empty entry; give comma-separated labels or indices');
  }
  const lower = labels.map((l) => l.toLowerCase());
  const indices = tokens.map((t) => {
    const i = /^\d+$/.test(t) ? Number(t) : labels.indexOf(t) >= 0 ? labels.indexOf(t) : lower.indexOf(t.toLowerCase());
    if (!(i >= 0 && i < labels.length)) {
      throw new ClientError(400, 'unknown_class', `unknown class "${t}"; valid labels: ${labels.join(', ')} (or indices 0–${labels.length - 1})`);
    }
    return i;
  });
  const seen = new Set<number>();
  for (const i of indices) {
    if (seen.has(i)) throw new ClientError(422, 'invalid_parameter', `class "${labels[i]}" is requested twice`);
    seen.add(i);
  }
  return indices;
}

function outputsFor(entry: ModelEntry, classes: number[] | undefined): number[] | undefined {
  if (!classes) return entry.classes.map((_, j) => j);
  const out: number[] = [];
  for (const c of classes) {
    const j = entry.classes.findIndex((ref) => ref.index === c);
    if (j < 0) return undefined;
    out.push(j);
  }
  return out.sort((a, b) => a - b);
}

export function fullModel(manifest: Manifest): ModelEntry {
  return manifest.models.find((m) => m.subtask === null)!;
}

/**
 * Pick the model: an explicit `model` or `subtask` wins (and must cover the classes); otherwise
 * the fewest-MACs model covering every requested class; with no classes, the full model.
 */
export function chooseModel(manifest: Manifest, params: ClassifyParams): ModelChoice {
  const classes = parseClasses(params.classes, manifest.labels);
  const describe = (e: ModelEntry) => `model "${e.id}" (${e.classes.map((c) => c.label).join(', ')})`;
  let entry: ModelEntry | undefined;
  if (params.model !== undefined && params.model !== '') {
    entry = manifest.models.find((m) => m.id === params.model);
    if (!entry) throw new ClientError(422, 'unknown_model', `unknown model "${params.model}"; models: ${manifest.models.map((m) => m.id).join(', ')}`);
    if (params.subtask && entry.subtask !== params.subtask) {
      throw new ClientError(422, 'invalid_parameter', `model "${entry.id}" is not subtask "${params.subtask}"`);
    }
  } else if (params.subtask !== undefined && params.subtask !== '') {
    entry = manifest.models.find((m) => m.subtask === params.subtask);
    if (!entry) {
      const names = manifest.models.flatMap((m) => (m.subtask ? [m.subtask] : []));
      throw new ClientError(422, 'unknown_subtask', `unknown subtask "${params.subtask}"; subtasks: ${names.join(', ') || '(none)'}`);
    }
  }
  if (entry) {
    const outputs = outputsFor(entry, classes);
    if (!outputs) throw new ClientError(422, 'invalid_parameter', `the requested classes are not all scored by ${describe(entry)}`);
    return { entry, outputs };
  }
  if (!classes) {
    const full = fullModel(manifest);
    return { entry: full, outputs: full.classes.map((_, j) => j) };
  }
  let best: ModelChoice | undefined;
  for (const m of manifest.models) {
    const outputs = outputsFor(m, classes);
    if (!outputs) continue;
    if (!best || m.macs < best.entry.macs || (m.macs === best.entry.macs && m.classes.length < best.entry.classes.length)) best = { entry: m, outputs };
  }
  // The full model scores every class, so some model always covers the request.
  return best!;
}

/** Softmax over the chosen outputs only, highest first, at most `topK`. */
export function predictions(logits: Float32Array, choice: ModelChoice, topK: number): Prediction[] {
  let max = -Infinity;
  for (const j of choice.outputs) max = Math.max(max, logits[j]!);
  let sum = 0;
  const exps = choice.outputs.map((j) => {
    const e = Math.exp(logits[j]! - max);
    sum += e;
    return e;
  });
  return choice.outputs
    .map((j, n) => ({ label: choice.entry.classes[j]!.label, index: choice.entry.classes[j]!.index, score: exps[n]! / sum }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, topK);
}

export interface Timing {
  decode_ms: number;
  infer_ms: number;
  total_ms: number;
}

/** The /v1/classify answer: `predictions` for one image, `results` for a batch. */
export function classifyResponse(choice: ModelChoice, logits: Float32Array[], topK: number, batch: boolean, timing: Timing) {
  const e = choice.entry;
  const model = { id: e.id, subtask: e.subtask, classes: choice.outputs.map((j) => e.classes[j]!), macs: e.macs, params: e.params };
  const round = (t: Timing): Timing => ({ decode_ms: +t.decode_ms.toFixed(3), infer_ms: +t.infer_ms.toFixed(3), total_ms: +t.total_ms.toFixed(3) });
  if (!batch) return { model, predictions: predictions(logits[0]!, choice, topK), timing: round(timing) };
  return { model, results: logits.map((row) => ({ predictions: predictions(row, choice, topK) })), timing: round(timing) };
}
