/**
 * Compile the three wasm binaries (onnxruntime-web, PNG and JPEG codecs) from node_modules.
 * For Node, Bun and Deno, which may compile wasm at runtime; workerd gets them precompiled
 * through wrangler's CompiledWasm rule instead (edge/worker.ts).
 *
 * Entries start this first thing, before importing the app, so that V8 decodes and validates
 * the 14 MB ORT binary on its background threads while the main thread loads the JavaScript.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import process from 'node:process';
import { setFlagsFromString } from 'node:v8';
import type { CodecModules } from './decode.ts';
import { markStartup } from './startup.ts';

const require = createRequire(import.meta.url);

/**
 * The binaries, as package specifiers. ORT's is the plain SIMD build, the smallest that runs
 * (14.2 MB; the jsep/jspi/asyncify builds are 16.8–28.3 MB and add WebGPU/JSPI we do not use).
 */
export const WASM_SPECIFIERS = {
  ort: 'onnxruntime-web/ort-wasm-simd-threaded.wasm',
  // The jsquash packages have no "exports" map, so their files resolve by path.
  png: '@jsquash/png/codec/pkg/squoosh_png_bg.wasm',
  jpeg: '@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm',
} as const;

export interface CompiledWasm {
  ort: WebAssembly.Module;
  codecs: CodecModules;
}

/**
 * V8's per-function budget before a wasm function is recompiled by TurboFan, ten times its
 * default (1,800,000). ORT's first session runs a lot of code once (runtime init, kernel
 * registry, graph optimisers); at the default budget V8 queues much of it for TurboFan, and
 * on a 2-core machine those compile jobs take the CPU the first request needs. Measured
 * (Node 20, footwear model, interleaved fresh processes): first session 220–350 ms and first
 * run 13–22 ms, against 650–1200 ms and 90–200 ms at the default; the steady-state run time is
 * the same (0.42 ms), because the inference kernels still tier up within the first ~100 runs.
 * V8 only (Node, Deno); Bun's JavaScriptCore ignores it.
 */
export const WASM_TIERING_BUDGET = 18_000_000;

let tuned = false;
/**
 * Set the tiering budget once, before the first wasm module is compiled. The environment
 * variable FACET_WASM_TIERING_BUDGET overrides it: a number, or `default` for V8's own
 * (bench/edge-cold.ts measures both).
 */
export function tuneWasmTiering(env: Record<string, string | undefined> = process.env): void {
  if (tuned) return;
  tuned = true;
  const wanted = env.FACET_WASM_TIERING_BUDGET;
  if (wanted === 'default') return;
  const budget = wanted !== undefined && /^\d+$/.test(wanted) ? Number(wanted) : WASM_TIERING_BUDGET;
  try {
    setFlagsFromString(`--wasm-tiering-budget=${budget}`);
  } catch {
    // A runtime without V8 flags keeps its own tiering; nothing depends on this.
  }
}

/**
 * Read synchronously (~10 ms for ORT's binary) so that the compile is under way before the
 * caller goes on to evaluate the app's modules, which keeps the main thread busy without a
 * turn of the event loop in the bundle: an async read would only start the compile after them.
 */
function compile(specifier: string): Promise<WebAssembly.Module> {
  return WebAssembly.compile(readFileSync(require.resolve(specifier)));
}

export async function compileWasmFromNodeModules(): Promise<CompiledWasm> {
  tuneWasmTiering();
  const [ort, png, jpeg] = await Promise.all([compile(WASM_SPECIFIERS.ort), compile(WASM_SPECIFIERS.png), compile(WASM_SPECIFIERS.jpeg)]);
  markStartup('wasm-compiled');
  return { ort, codecs: { png, jpeg } };
}
