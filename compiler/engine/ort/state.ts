/**
 * Training state on the host for onnxruntime sessions: every parameter, optimizer slot and
 * running statistic lives in one flat Float32Array per bank, and a tensor per key views
 * its slice. Two banks alternate: a step reads the current bank and writes the next one
 * through preallocated outputs, so no step allocates or copies state through JavaScript.
 */
import * as ort from 'onnxruntime-node';
import type { Graph, HostTensor, ParamStore } from '../../graph/ir.ts';
import type { OptimizerState } from '../../train/optimizers.ts';
import { fromOrtLayout, toOrtLayout } from './layout.ts';
import { floatTensor } from './session.ts';

export interface Slot {
  key: string;
  shape: number[];
  offset: number;
  size: number;
}

/** Keys laid out one after another in a flat array. */
export class Packing {
  readonly slots: Slot[] = [];
  readonly byKey = new Map<string, Slot>();
  readonly size: number;
  constructor(entries: Iterable<[key: string, shape: number[]]>) {
    let offset = 0;
    for (const [key, shape] of entries) {
      const size = shape.reduce((p, q) => p * q, 1);
      const slot = { key, shape, offset, size };
      this.slots.push(slot);
      this.byKey.set(key, slot);
      offset += size;
    }
    this.size = offset;
  }
  view(flat: Float32Array, key: string): Float32Array {
    const s = this.byKey.get(key);
    if (!s) throw new Error(`packing: no key "${key}"`);
    return flat.subarray(s.offset, s.offset + s.size);
  }
  tensor(flat: Float32Array, key: string): ort.Tensor {
    return floatTensor(this.view(flat, key), this.byKey.get(key)!.shape);
  }
}

export class StateBanks {
  private banks: [Float32Array, Float32Array];
  private current = 0;
  constructor(readonly packing: Packing) {
    this.banks = [new Float32Array(packing.size), new Float32Array(packing.size)];
  }
  get now(): Float32Array {
    return this.banks[this.current]!;
  }
  get next(): Float32Array {
    return this.banks[1 - this.current]!;
  }
  swap(): void {
    this.current = 1 - this.current;
  }
}

/**
 * Fills `flat` from a ParamStore and optimizer slots (IR layout) for the keys of
 * `packing`; a slot the optimizer has not created yet starts at zero, as PyTorch's do.
 */
export function packState(graph: Graph, packing: Packing, flat: Float32Array, params: ParamStore, slots: Map<string, HostTensor> = new Map()): void {
  for (const s of packing.slots) {
    const isSlot = s.key.includes('#');
    const t = isSlot ? slots.get(s.key) : params.get(s.key);
    if (!t) {
      if (isSlot) {
        flat.fill(0, s.offset, s.offset + s.size);
        continue;
      }
      throw new Error(`training state: parameter "${s.key}" is missing`);
    }
    const ortT = toOrtLayout(graph, s.key, t);
    if (ortT.data.length !== s.size) throw new Error(`training state: "${s.key}" has ${ortT.data.length} values, the graph needs ${s.size} [${s.shape.join(', ')}]`);
    flat.set(ortT.data, s.offset);
  }
}

/** The keys of `packing` back as IR-layout tensors (copies). */
export function unpackState(graph: Graph, packing: Packing, flat: Float32Array, filter: (key: string) => boolean): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const s of packing.slots) {
    if (!filter(s.key)) continue;
    out.set(s.key, fromOrtLayout(graph, s.key, { shape: [...s.shape], data: flat.slice(s.offset, s.offset + s.size) }));
  }
  return out;
}

export function optimizerStateOf(graph: Graph, packing: Packing, flat: Float32Array, kind: OptimizerState['kind'], step: number): OptimizerState {
  // Slots the optimizer would not have created yet (before the first update) are left out.
  return { kind, step, slots: step === 0 ? new Map() : unpackState(graph, packing, flat, (k) => k.includes('#')) };
}
