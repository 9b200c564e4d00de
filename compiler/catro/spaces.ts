/**
 * Which channels of a graph can be pruned together (docs/catro.md §4, §5).
 *
 * A *channel space* is a set of layer outputs that share one channel index: a conv's
 * output, everything channel-wise after it (BN, ReLU, pools) and every tensor tied to
 * it by an addition. Removing channel j of a space means removing output filter j of
 * each conv that *produces* the space, entry j of each BN in it, and input slice j of
 * each layer that *consumes* it (conv kernels, the dense rows after a global pool).
 *
 * - `inner` space: one producing conv, no addition, exactly one consumer and it is a
 *   conv — the first conv of a residual basic block, or a VGG conv (pools in between
 *   are fine). The default pruning target.
 * - `residual` space: the stream of a residual stage, tied by additions. Prunable only
 *   with one shared channel set, and only when every producer is a conv (projection
 *   shortcuts); a parameter-free `padshortcut` maps channels by offset, so spaces it
 *   reads or writes are not prunable.
 */
import type { Graph, Layer } from '../graph/ir.ts';
import { layerInputs } from '../graph/ir.ts';
import { type ActShape, inferShapes, isMap } from '../graph/shapes.ts';

export type SpaceKind = 'inner' | 'residual' | 'other';
export type PruneMode = 'inner' | 'residual';

export interface ChannelSpace {
  /** The first producing layer's name; pruning maps are keyed by it (or any producer). */
  id: string;
  kind: SpaceKind;
  channels: number;
  /** Layers that create these channels (convs when prunable), topological order. */
  producers: string[];
  /** Every layer whose output lies in this space (producers included). */
  members: string[];
  /** Layers outside the space that read it. */
  consumers: string[];
  /** The tensors the consumers read: where CATRO measures the scatter. */
  taps: string[];
  prunable: boolean;
  /** Why not, when not prunable. */
  reason?: string;
}

/** Layers whose output channels are their input's channels, one for one. */
const CHANNELWISE = new Set<Layer['kind']>(['bn', 'relu', 'maxpool', 'avgpool', 'globalavgpool', 'add']);

export function analyzeChannelSpaces(graph: Graph): ChannelSpace[] {
  const shapes = inferShapes(graph);
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(x, r);
    return r;
  };
  // Union toward the earlier layer so a root is the first layer of its space.
  const order = new Map(graph.layers.map((l, i) => [l.name, i]));
  const union = (a: string, b: string) => {
    const [ra, rb] = [find(a), find(b)];
    if (ra === rb) return;
    if (order.get(ra)! < order.get(rb)!) parent.set(rb, ra);
    else parent.set(ra, rb);
  };
  const byName = new Map(graph.layers.map((l) => [l.name, l]));
  for (const l of graph.layers) parent.set(l.name, l.name);
  for (const l of graph.layers) {
    if (CHANNELWISE.has(l.kind)) for (const i of layerInputs(l)) union(l.name, i);
  }

  const spaces = new Map<string, ChannelSpace>();
  for (const l of graph.layers) {
    const shape: ActShape = shapes.get(l.name)!;
    // Vectors after flatten/dense carry no channel axis; a global pool's output stays in its space.
    if (!isMap(shape) && l.kind !== 'globalavgpool') continue;
    const root = find(l.name);
    let s = spaces.get(root);
    if (!s) {
      s = { id: l.name, kind: 'other', channels: shape[shape.length - 1]!, producers: [], members: [], consumers: [], taps: [], prunable: false };
      spaces.set(root, s);
    }
    s.members.push(l.name);
    if (!CHANNELWISE.has(l.kind)) s.producers.push(l.name);
  }
  const spaceOf = new Map<string, ChannelSpace>();
  for (const s of spaces.values()) for (const m of s.members) spaceOf.set(m, s);
  for (const l of graph.layers) {
    if (spaceOf.has(l.name) && CHANNELWISE.has(l.kind)) continue;
    for (const i of layerInputs(l)) {
      const s = spaceOf.get(i);
      if (!s) continue;
      s.consumers.push(l.name);
      // Measure a globally pooled tensor on its feature map, like every other tap.
      let tap = i;
      while (byName.get(tap)!.kind === 'globalavgpool') tap = layerInputs(byName.get(tap)!)[0]!;
      if (!s.taps.includes(tap)) s.taps.push(tap);
    }
  }

  for (const s of spaces.values()) {
    s.reason = whyNotPrunable(s, byName);
    s.prunable = s.reason === undefined;
    if (s.prunable) s.id = s.producers[0]!;
    const isConv = (name: string) => byName.get(name)!.kind === 'conv';
    if (s.members.some((m) => byName.get(m)!.kind === 'add')) s.kind = 'residual';
    else if (s.producers.length === 1 && isConv(s.producers[0]!) && s.consumers.length === 1 && isConv(s.consumers[0]!)) s.kind = 'inner';
    else s.kind = 'other';
  }
  return [...spaces.values()];
}

function whyNotPrunable(s: ChannelSpace, byName: Map<string, Layer>): string | undefined {
  const badProducer = s.producers.find((p) => byName.get(p)!.kind !== 'conv');
  if (badProducer) return `its channels come from "${badProducer}" (${byName.get(badProducer)!.kind}), not a conv`;
  if (s.consumers.length === 0) return 'it is the model output or unused';
  for (const c of s.consumers) {
    const layer = byName.get(c)!;
    if (layer.kind === 'conv') continue;
    if (layer.kind === 'dense' && byName.get(layer.input)!.kind === 'globalavgpool') continue;
    return `"${c}" (${layer.kind}) reads it and cannot drop input channels`;
  }
  return undefined;
}

/**
 * The spaces CATRO prunes, shallow → deep. `inner` (default): only inner spaces;
 * `residual`: inner spaces and prunable residual streams (one channel set per stream).
 */
export function prunableSpaces(graph: Graph, mode: PruneMode = 'inner'): ChannelSpace[] {
  if (mode !== 'inner' && mode !== 'residual') throw new Error(`prune mode must be "inner" or "residual", got "${mode}"`);
  return analyzeChannelSpaces(graph).filter((s) => s.prunable && (s.kind === 'inner' || (mode === 'residual' && s.kind === 'residual')));
}

/** The prunable space a layer name belongs to (any member, e.g. a producing conv). */
export function spaceOfLayer(spaces: ChannelSpace[], layer: string): ChannelSpace | undefined {
  return spaces.find((s) => s.members.includes(layer));
}
