/**
 * onnxruntime-web set up the one way that works in every runtime we serve from, workerd included
 * (the project brief's edge notes, §1.2, outside this repository; docs/api.md restates it): the
 * bundle build (`onnxruntime-web/wasm`, no dynamic import), one thread, no proxy worker, a
 * placeholder `wasmBinary` so ORT neither locates nor fetches its .wasm, and
 * `WebAssembly.instantiate` answering ORT's byte-buffer call with an instance of a module
 * compiled beforehand (workerd forbids compiling wasm at runtime).
 * Wrapping instantiate also hands us ORT's linear memory, which is what the memory budget counts.
 */
import * as ort from 'onnxruntime-web/wasm';
import { markStartup } from './startup.ts';

export type Ort = typeof ort;

/** Four bytes ORT passes back to instantiate; any other byte buffer is compiled as usual. */
const PLACEHOLDER = new Uint8Array([0x00, 0x66, 0x63, 0x74]);

let ortMemory: WebAssembly.Memory | undefined;
let initialHeap = 0;
let configured = false;

function isPlaceholder(source: unknown): boolean {
  const view = ArrayBuffer.isView(source) ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength) : source instanceof ArrayBuffer ? new Uint8Array(source) : undefined;
  return !!view && view.length === PLACEHOLDER.length && view.every((b, i) => b === PLACEHOLDER[i]);
}

function findMemory(...objects: unknown[]): WebAssembly.Memory | undefined {
  for (const o of objects) {
    if (!o || typeof o !== 'object') continue;
    for (const v of Object.values(o)) {
      if (v instanceof WebAssembly.Memory) return v;
      if (v && typeof v === 'object' && !(v instanceof WebAssembly.Module)) {
        for (const w of Object.values(v)) if (w instanceof WebAssembly.Memory) return w;
      }
    }
  }
  return undefined;
}

/** Configure ORT once per isolate/process with its precompiled wasm module. */
export function configureOrt(wasmModule: WebAssembly.Module): Ort {
  if (configured) return ort;
  configured = true;
  const original = WebAssembly.instantiate.bind(WebAssembly) as (s: unknown, i?: WebAssembly.Imports) => Promise<unknown>;
  const patched = async (source: unknown, imports?: WebAssembly.Imports): Promise<unknown> => {
    if (!isPlaceholder(source)) return original(source, imports);
    const instance = (await original(wasmModule, imports)) as WebAssembly.Instance;
    ortMemory = findMemory(instance.exports, imports);
    initialHeap = ortMemory?.buffer.byteLength ?? 0;
    markStartup('ort-instantiated');
    return { instance, module: wasmModule };
  };
  (WebAssembly as { instantiate: unknown }).instantiate = patched;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmBinary = PLACEHOLDER;
  ort.env.logLevel = 'error';
  return ort;
}

/** Bytes of ORT's wasm linear memory now (0 before the first session). It never shrinks. */
export function ortHeapBytes(): number {
  return ortMemory?.buffer.byteLength ?? 0;
}

/** Heap size when ORT was instantiated: the runtime's own share, not any model's. */
export function ortInitialHeapBytes(): number {
  return initialHeap;
}
