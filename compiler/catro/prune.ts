/**
 * Physical channel removal and classifier restriction on the graph IR + ParamStore
 * (docs/catro.md §4). Pure functions: inputs are never modified; untouched parameter
 * tensors are shared between the input and output stores.
 *
 * Layouts (ir.ts): conv kernel HWIO [kh, kw, in, out], conv bias [out], BN vectors [C],
 * dense kernel [in, units], dense bias [units].
 */
import type { ConvLayer, Graph, HostTensor, Layer, ParamStore } from '../graph/ir.ts';
import { findLayer, paramKey } from '../graph/ir.ts';
import { inferShapes } from '../graph/shapes.ts';
import { type ChannelSpace, analyzeChannelSpaces } from './spaces.ts';

/** Keeps `keep[axis]` indices along each axis that has one; copies the rest. */
export function sliceTensor(t: HostTensor, keep: (readonly number[] | undefined)[]): HostTensor {
  const shape = t.shape;
  const kept = shape.map((n, a) => keep[a] ?? Array.from({ length: n }, (_, i) => i));
  const outShape = kept.map((k) => k.length);
  const strides = shape.map((_, a) => shape.slice(a + 1).reduce((p, v) => p * v, 1));
  const out = new Float32Array(outShape.reduce((p, v) => p * v, 1));
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let a = 0; a < rank; a++) src += kept[a]![idx[a]!]! * strides[a]!;
    out[o] = t.data[src]!;
    for (let a = rank - 1; a >= 0; a--) {
      if (++idx[a]! < outShape[a]!) break;
      idx[a] = 0;
    }
  }
  return { shape: outShape, data: out };
}

interface ResolvedKeep {
  space: ChannelSpace;
  keep: number[];
}

/** Checks a keep map (keyed by any member layer of a prunable space) against the graph. */
function resolveKeep(graph: Graph, keep: Map<string, readonly number[]>): ResolvedKeep[] {
  const spaces = analyzeChannelSpaces(graph);
  const out = new Map<ChannelSpace, ResolvedKeep>();
  for (const [layer, indices] of keep) {
    const space = spaces.find((s) => s.members.includes(layer));
    if (!space) throw new Error(`prune: graph ${graph.arch} has no layer "${layer}" with a channel axis`);
    if (!space.prunable) throw new Error(`prune: channels of "${layer}" cannot be pruned: ${space.reason}`);
    const sorted = [...new Set(indices)].sort((a, b) => a - b);
    if (sorted.length !== indices.length) throw new Error(`prune: keep list of "${layer}" repeats a channel`);
    if (sorted.length === 0) throw new Error(`prune: keep list of "${layer}" is empty; a layer keeps at least one channel`);
    for (const j of sorted) {
      if (!Number.isInteger(j) || j < 0 || j >= space.channels) {
        throw new Error(`prune: keep list of "${layer}" has channel ${j}, outside [0, ${space.channels})`);
      }
    }
    const prev = out.get(space);
    if (prev && prev.keep.join() !== sorted.join()) {
      throw new Error(`prune: "${layer}" and another key name the same channel space "${space.id}" with different keep lists`);
    }
    out.set(space, { space, keep: sorted });
  }
  return [...out.values()];
}

/** Per-parameter axis keeps implied by a set of space keeps. */
function axisKeeps(graph: Graph, resolved: ResolvedKeep[]): Map<string, (number[] | undefined)[]> {
  const byName = new Map(graph.layers.map((l) => [l.name, l]));
  const keeps = new Map<string, (number[] | undefined)[]>();
  const set = (key: string, axis: number, keep: number[]) => {
    const k = keeps.get(key) ?? [];
    k[axis] = keep;
    keeps.set(key, k);
  };
  for (const { space, keep } of resolved) {
    for (const name of space.members) {
      const l = byName.get(name)!;
      if (l.kind === 'conv') {
        set(paramKey(name, 'kernel'), 3, keep);
        if (l.bias) set(paramKey(name, 'bias'), 0, keep);
      } else if (l.kind === 'bn') {
        for (const p of ['gamma', 'beta', 'mean', 'variance']) set(paramKey(name, p), 0, keep);
      }
    }
    for (const name of space.consumers) {
      const l = byName.get(name)!;
      if (l.kind === 'conv') set(paramKey(name, 'kernel'), 2, keep);
      else if (l.kind === 'dense') set(paramKey(name, 'kernel'), 0, keep);
    }
  }
  return keeps;
}

function getParam(params: ParamStore, key: string): HostTensor {
  const t = params.get(key);
  if (!t) throw new Error(`prune: parameter "${key}" is missing from the store`);
  return t;
}

/**
 * Removes every channel not in `keep` from its channel space: the producing convs'
 * output filters (and biases), the space's BN entries, and the consumers' input slices.
 * `keep` maps a layer of each space (e.g. the producing conv) to the channels kept.
 */
export function pruneChannels(
  graph: Graph,
  params: ParamStore,
  keep: Map<string, readonly number[]>,
): { graph: Graph; params: ParamStore } {
  const resolved = resolveKeep(graph, keep);
  const filters = new Map<string, number>();
  for (const { space, keep: k } of resolved) for (const p of space.producers) filters.set(p, k.length);
  const layers: Layer[] = graph.layers.map((l) =>
    l.kind === 'conv' && filters.has(l.name) ? ({ ...l, filters: filters.get(l.name)! } satisfies ConvLayer) : structuredClone(l),
  );
  const pruned: Graph = { ...graph, layers };
  const out: ParamStore = new Map(params);
  for (const [key, k] of axisKeeps(graph, resolved)) out.set(key, sliceTensor(getParam(params, key), k));
  inferShapes(pruned);
  return { graph: pruned, params: out };
}

/**
 * The same network with the dropped channels silenced instead of removed: producing
 * conv filters and biases and the space's BN γ and β are zeroed, so in eval mode every
 * tensor of the space is exactly 0 on those channels. Used while CATRO selects deeper
 * layers, and to check `pruneChannels` against.
 */
export function maskChannels(graph: Graph, params: ParamStore, keep: Map<string, readonly number[]>): ParamStore {
  const out: ParamStore = new Map(params);
  const zeroAxis = (key: string, axis: number, keepSet: Set<number>) => {
    const t = getParam(params, key);
    const data = t.data.slice();
    const n = t.shape[axis]!;
    const inner = t.shape.slice(axis + 1).reduce((p, v) => p * v, 1);
    for (let i = 0; i < data.length; i++) {
      if (!keepSet.has(Math.floor(i / inner) % n)) data[i] = 0;
    }
    out.set(key, { shape: [...t.shape], data });
  };
  for (const { space, keep: k } of resolveKeep(graph, keep)) {
    const keepSet = new Set(k);
    for (const name of space.members) {
      const l = findLayer(graph, name);
      if (l.kind === 'conv') {
        zeroAxis(paramKey(name, 'kernel'), 3, keepSet);
        if (l.bias) zeroAxis(paramKey(name, 'bias'), 0, keepSet);
      } else if (l.kind === 'bn') {
        zeroAxis(paramKey(name, 'gamma'), 0, keepSet);
        zeroAxis(paramKey(name, 'beta'), 0, keepSet);
      }
    }
  }
  return out;
}

/**
 * Keeps only the classifier outputs of `classIndices` (in that order): the output dense
 * layer's kernel columns and bias entries. Output i of the result is class classIndices[i].
 */
export function restrictClasses(graph: Graph, params: ParamStore, classIndices: readonly number[]): { graph: Graph; params: ParamStore } {
  const head = findLayer(graph, graph.output);
  if (head.kind !== 'dense') throw new Error(`restrictClasses: output layer "${head.name}" is ${head.kind}, not dense`);
  if (classIndices.length === 0) throw new Error('restrictClasses: no classes given');
  if (new Set(classIndices).size !== classIndices.length) throw new Error(`restrictClasses: class list ${JSON.stringify(classIndices)} repeats a class`);
  for (const c of classIndices) {
    if (!Number.isInteger(c) || c < 0 || c >= head.units) {
      throw new Error(`restrictClasses: class ${c} is outside [0, ${head.units}) of layer "${head.name}"`);
    }
  }
  const keep = [...classIndices];
  const layers = graph.layers.map((l) => (l.name === head.name ? { ...head, units: keep.length } : structuredClone(l)));
  const out: ParamStore = new Map(params);
  out.set(paramKey(head.name, 'kernel'), sliceTensor(getParam(params, paramKey(head.name, 'kernel')), [undefined, keep]));
  out.set(paramKey(head.name, 'bias'), sliceTensor(getParam(params, paramKey(head.name, 'bias')), [keep]));
  const restricted: Graph = { ...graph, layers };
  inferShapes(restricted);
  return { graph: restricted, params: out };
}

/** The graph alone with each space narrowed to a width (for MACs counting in Stage I). */
export function withWidths(graph: Graph, spaces: readonly ChannelSpace[], widths: ReadonlyMap<string, number>): Graph {
  const filters = new Map<string, number>();
  for (const s of spaces) {
    const k = widths.get(s.id);
    if (k === undefined) continue;
    if (!Number.isInteger(k) || k < 1 || k > s.channels) throw new Error(`width of "${s.id}" must be an integer in [1, ${s.channels}], got ${k}`);
    for (const p of s.producers) filters.set(p, k);
  }
  return { ...graph, layers: graph.layers.map((l) => (l.kind === 'conv' && filters.has(l.name) ? { ...l, filters: filters.get(l.name)! } : l)) };
}
