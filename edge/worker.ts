/**
 * Cloudflare Workers entry. The wasm binaries arrive precompiled through wrangler's
 * CompiledWasm rule (workerd cannot compile wasm at runtime); models come from the static
 * assets binding. The app is built on the first request of an isolate, not at module load,
 * to stay inside the 1 s startup limit.
 */
import ortWasm from 'onnxruntime-web/ort-wasm-simd-threaded.wasm';
// @ts-ignore: wasm-bindgen ships a .d.ts for the instance's exports; CompiledWasm gives a Module.
import pngWasm from '@jsquash/png/codec/pkg/squoosh_png_bg.wasm';
import jpegWasm from '@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm';
import { createApp, errorBody, type FacetApp } from './app.ts';
import { FetchModelStore } from './store.ts';

interface WorkerEnv {
  ASSETS: { fetch(request: Request): Promise<Response> };
  FACET_API_KEY?: string;
  FACET_CORS?: string;
}

let built: Promise<FacetApp> | undefined;

function build(env: WorkerEnv): Promise<FacetApp> {
  const cors = env.FACET_CORS ? (env.FACET_CORS === '*' ? '*' : env.FACET_CORS.split(',').map((s) => s.trim())) : undefined;
  return createApp({
    store: new FetchModelStore(env.ASSETS, 'https://assets.invalid/'),
    wasm: { ort: ortWasm, codecs: { png: pngWasm, jpeg: jpegWasm } },
    apiKey: env.FACET_API_KEY || undefined,
    cors,
    // Per-isolate counters say little on Workers; use Workers analytics there.
    metrics: false,
  });
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: unknown): Promise<Response> {
    built ??= build(env);
    let facet: FacetApp;
    try {
      facet = await built;
    } catch (err) {
      // A bad manifest cannot stop a Worker from starting; every request says why instead.
      const message = `startup failed: ${(err as Error).message}`;
      console.error(`facet edge: ${message}`);
      return Response.json(errorBody('startup_failed', message), { status: 503 });
    }
    const response = await facet.app.fetch(request, env, ctx as never);
    // Answers that did not need the body (415, most 400s) leave it unread. wrangler dev's proxy
    // then fails reading it after the response and restarts the worker under every request in
    // flight; draining a small body first avoids that. Bodies over the limit are not drained.
    if (request.body && !request.bodyUsed && response.status !== 413) await request.body.pipeTo(new WritableStream()).catch(() => undefined);
    return response;
  },
};
