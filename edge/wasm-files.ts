/**
 * Compile the three wasm binaries (onnxruntime-web, PNG and JPEG codecs) from node_modules.
 * For Node, Bun and Deno, which may compile wasm at runtime; workerd gets them precompiled
 * through wrangler's CompiledWasm rule instead (edge/worker.ts).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { CodecModules } from './decode.ts';

const require = createRequire(import.meta.url);

async function compile(specifier: string): Promise<WebAssembly.Module> {
  return WebAssembly.compile(await readFile(require.resolve(specifier)));
}

export async function compileWasmFromNodeModules(): Promise<{ ort: WebAssembly.Module; codecs: CodecModules }> {
  const [ort, png, jpeg] = await Promise.all([
    compile('onnxruntime-web/ort-wasm-simd-threaded.wasm'),
    // The jsquash packages have no "exports" map, so their files resolve by path.
    compile('@jsquash/png/codec/pkg/squoosh_png_bg.wasm'),
    compile('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm'),
  ]);
  return { ort, codecs: { png, jpeg } };
}
