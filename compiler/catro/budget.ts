/**
 * CATRO Stage I: how many channels each prunable space keeps (docs/catro.md §3). The
 * best trace ratio never rises with k, so widths come from a FLOPs budget:
 * - (A) keep ratios: k_l = max(1, round(r_l·C_l)), with r_l = min(1, s·ρ_l) for relative
 *   ratios ρ_l (1 = uniform); the scale s is bisected to the MACs target, then single
 *   channels are added back, most-pruned space first, while the target still holds;
 * - (B) global greedy: remove, one channel at a time, the channel with the smallest
 *   u_j = (b_j − λ_l⁰·w_j)/T_l per MAC saved (own conv and consumer conv), keeping
 *   k_l ≥ ⌈0.1·C_l⌉, until the target holds.
 * Both stop within one channel's worth of MACs below the target. MACs always come from
 * the graph counter on the narrowed graph, so every layer kind is counted once, in one place.
 */
import { countGraph } from '../graph/count.ts';
import type { Graph } from '../graph/ir.ts';
import { withWidths } from './prune.ts';
import type { Scatter } from './scatter.ts';
import { traceRatio } from './select.ts';
import type { ChannelSpace } from './spaces.ts';

export type CountMacs = (graph: Graph) => number;
const defaultCount: CountMacs = (g) => countGraph(g).macs;

export interface Widths {
  /** Channels kept per space id. */
  widths: Map<string, number>;
  macs: number;
  fullMacs: number;
  targetMacs?: number;
  /** Greedy only: the space that lost the last channel, and the MACs that removal saved. */
  last?: { space: string; saving: number };
}

/** k_l = max(1, round(r_l·C_l)) for one ratio or a ratio per space id (missing ids stay whole). */
export function widthsForRatios(spaces: readonly ChannelSpace[], ratio: number | ReadonlyMap<string, number>): Map<string, number> {
  if (typeof ratio !== 'number') {
    // A misspelt layer would otherwise keep all its channels without a word.
    const ids = new Set(spaces.map((s) => s.id));
    for (const id of ratio.keys()) {
      if (!ids.has(id)) throw new Error(`keep ratio given for "${id}", which is not a prunable layer (prunable: ${[...ids].join(', ') || 'none'})`);
    }
  }
  const widths = new Map<string, number>();
  for (const s of spaces) {
    const r = typeof ratio === 'number' ? ratio : (ratio.get(s.id) ?? 1);
    if (!(r >= 0 && r <= 1)) throw new Error(`keep ratio of "${s.id}" must be in [0, 1], got ${r}`);
    widths.set(s.id, Math.max(1, Math.round(r * s.channels)));
  }
  return widths;
}

function checkTarget(targetMacs: number, fullMacs: number): void {
  if (!(targetMacs > 0)) throw new Error(`MACs target must be > 0, got ${targetMacs}`);
  if (targetMacs > fullMacs) throw new Error(`MACs target ${targetMacs} exceeds the full model's ${fullMacs}`);
}

/** Stage I (A): ratio widths tuned to a MACs target by bisection, then filled channel by channel. */
export function ratioBudget(
  graph: Graph,
  spaces: readonly ChannelSpace[],
  targetMacs: number,
  opts: { relative?: ReadonlyMap<string, number>; fill?: boolean; countMacs?: CountMacs } = {},
): Widths {
  const count = opts.countMacs ?? defaultCount;
  const fullMacs = count(graph);
  checkTarget(targetMacs, fullMacs);
  const rel = (s: ChannelSpace) => {
    const r = opts.relative?.get(s.id) ?? 1;
    if (!(r > 0)) throw new Error(`relative keep ratio of "${s.id}" must be > 0, got ${r}`);
    return r;
  };
  const at = (scale: number) => new Map(spaces.map((s) => [s.id, Math.max(1, Math.round(Math.min(1, scale * rel(s)) * s.channels))]));
  const macsOf = (w: Map<string, number>) => count(withWidths(graph, spaces, w));
  const floor = macsOf(at(0));
  if (floor > targetMacs) {
    throw new Error(`MACs target ${targetMacs} is below ${floor}, the MACs with one channel per prunable layer`);
  }
  let lo = 0;
  let hi = Math.max(...spaces.map((s) => 1 / rel(s)));
  for (let it = 0; it < 60 && hi - lo > 1e-9; it++) {
    const mid = (lo + hi) / 2;
    if (macsOf(at(mid)) <= targetMacs) lo = mid;
    else hi = mid;
  }
  const widths = at(lo);
  let macs = macsOf(widths);
  if (opts.fill ?? true) {
    for (;;) {
      const candidates = spaces
        .filter((s) => widths.get(s.id)! < s.channels)
        .sort((a, b) => widths.get(a.id)! / a.channels - widths.get(b.id)! / b.channels);
      let added = false;
      for (const s of candidates) {
        widths.set(s.id, widths.get(s.id)! + 1);
        const m = macsOf(widths);
        if (m <= targetMacs) {
          macs = m;
          added = true;
          break;
        }
        widths.set(s.id, widths.get(s.id)! - 1);
      }
      if (!added) break;
    }
  }
  return { widths, macs, fullMacs, targetMacs };
}

/** Stage I (B): the global FLOPs-aware greedy on per-channel contributions. */
export function greedyBudget(
  graph: Graph,
  spaces: readonly ChannelSpace[],
  scatters: ReadonlyMap<string, Scatter>,
  targetMacs: number,
  opts: { floorRatio?: number; countMacs?: CountMacs } = {},
): Widths {
  const count = opts.countMacs ?? defaultCount;
  const floorRatio = opts.floorRatio ?? 0.1;
  const fullMacs = count(graph);
  checkTarget(targetMacs, fullMacs);
  const widths = new Map(spaces.map((s) => [s.id, s.channels]));
  const floors = new Map(spaces.map((s) => [s.id, Math.max(1, Math.ceil(floorRatio * s.channels))]));
  // Channels of each space by contribution u_j, ascending: the next one to go is first.
  const queues = new Map<string, number[]>();
  for (const s of spaces) {
    const sc = scatters.get(s.id);
    if (!sc || sc.b.length !== s.channels) throw new Error(`greedyBudget: no scatter with ${s.channels} channels for "${s.id}"`);
    const all = Array.from({ length: s.channels }, (_, j) => j);
    const lambda0 = traceRatio(all, sc.b, sc.w);
    const total = all.reduce((t, j) => t + sc.b[j]! + sc.w[j]!, 0);
    const u = all.map((j) => (total > 0 && Number.isFinite(lambda0) ? (sc.b[j]! - lambda0 * sc.w[j]!) / total : 0));
    queues.set(s.id, all.sort((p, q) => u[p]! - u[q]! || p - q).map((j) => u[j]!));
  }
  // Spaces sharing a conv (one's producer reads the other) change each other's savings.
  const coupled = new Map(
    spaces.map((s) => [
      s.id,
      spaces.filter((t) => t.producers.some((p) => s.consumers.includes(p)) || s.producers.some((p) => t.consumers.includes(p))).map((t) => t.id),
    ]),
  );
  let macs = fullMacs;
  let last: Widths['last'];
  const saving = new Map<string, number>();
  const updateSaving = (id: string) => {
    if (widths.get(id)! <= floors.get(id)!) return saving.delete(id);
    widths.set(id, widths.get(id)! - 1);
    saving.set(id, macs - count(withWidths(graph, spaces, widths)));
    widths.set(id, widths.get(id)! + 1);
  };
  for (const s of spaces) updateSaving(s.id);
  while (macs > targetMacs) {
    let best: string | undefined;
    let bestScore = Infinity;
    for (const s of spaces) {
      const save = saving.get(s.id);
      if (save === undefined || save <= 0) continue;
      const removed = s.channels - widths.get(s.id)!;
      const score = queues.get(s.id)![removed]! / save;
      if (score < bestScore) [best, bestScore] = [s.id, score];
    }
    if (best === undefined) {
      throw new Error(`MACs target ${targetMacs} is not reachable keeping ⌈${floorRatio}·C⌉ channels per layer (reached ${macs})`);
    }
    last = { space: best, saving: saving.get(best)! };
    macs -= last.saving;
    widths.set(best, widths.get(best)! - 1);
    for (const id of new Set([best, ...coupled.get(best)!])) updateSaving(id);
  }
  return { widths, macs: count(withWidths(graph, spaces, widths)), fullMacs, targetMacs, last };
}
