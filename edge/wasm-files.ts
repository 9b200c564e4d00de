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
import wasmV8Flags from './wasm-v8-flags.json' with { type: 'json' };

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
 * V8 flags for compiling and running ORT's 14 MB binary, set before the first wasm compile.
 * Node takes them here at run time. Deno ignores run-time V8 flags, so `npm run serve:deno`
 * passes the tiering budget with --v8-flags (edge/deno.ts). Bun's JavaScriptCore has neither.
 *
 * --wasm-tiering-budget, ten times V8's default (1,800,000): how much a wasm function runs
 * before V8 recompiles it with TurboFan. ORT's first session runs a lot of code once (runtime
 * init, kernel registry, graph optimisers); at the default budget V8 queues much of it for
 * TurboFan, and on a 2-core machine those compile jobs take the CPU the first request needs.
 * Measured (Node 20, footwear model, fresh processes interleaved, machine shared with a
 * training job): first session 220–350 ms and first run 13–22 ms, against 650–1200 ms and
 * 90–200 ms at the default. The steady-state run time is the same (0.42 ms): the inference
 * kernels still tier up within the first 20–40 runs.
 *
 * --wasm-lazy-validation: V8 compiles wasm functions lazily (on first call) but validates all
 * of them up front; this validates each when it is compiled instead. WebAssembly.compile of
 * ORT's binary then takes 18–22 ms of CPU instead of 84–93 ms; the functions ORT runs are
 * validated as they are compiled, and the binary is the one npm installed.
 *
 * The list is a JSON file because scripts/serve-node.mjs (plain JavaScript) sets the same flags
 * before it loads the bundle: V8 rejects a code cache made under other flags.
 */
export const WASM_V8_FLAGS: readonly string[] = wasmV8Flags;

/**
 * The V8 flags to set: a space-separated override from the environment (empty for V8's
 * defaults) or, without one, `defaults`. scripts/serve-node.mjs reads the same overrides.
 */
export function v8FlagList(override: string | undefined, defaults: readonly string[]): readonly string[] {
  return override !== undefined ? override.split(/\s+/).filter(Boolean) : defaults;
}

let tuned = false;
/**
 * Set WASM_V8_FLAGS once. FACET_WASM_V8_FLAGS in the environment replaces them (space-separated;
 * empty for V8's defaults): bench/edge-cold.ts measures the difference.
 */
export function tuneWasmCompilation(env: Record<string, string | undefined> = process.env): void {
  if (tuned) return;
  tuned = true;
  for (const flag of v8FlagList(env.FACET_WASM_V8_FLAGS, WASM_V8_FLAGS)) {
    try {
      setFlagsFromString(flag);
    } catch {
      // A runtime without V8 flags keeps its own behaviour; nothing depends on these.
    }
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
  tuneWasmCompilation();
  const [ort, png, jpeg] = await Promise.all([compile(WASM_SPECIFIERS.ort), compile(WASM_SPECIFIERS.png), compile(WASM_SPECIFIERS.jpeg)]);
  markStartup('wasm-compiled');
  return { ort, codecs: { png, jpeg } };
}
