/**
 * Node entry: `tsx edge/node.ts [--port 8788] [--models DIR]`, or bundled (scripts/build-edge.ts)
 * and started with plain node by `npm run serve:node`. Env: PORT, FACET_MODELS,
 * FACET_API_KEY, FACET_CORS (comma-separated origins or *), FACET_RELOAD_POLL_MS,
 * FACET_RELOAD_WATCH. Also used by Bun and Deno (see bun.ts, deno.ts), which differ only in how
 * they listen: the app, and the models folder watch that switches it to a new manifest, are
 * built here for all three.
 */
import { existsSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import type { FacetApp } from './app.ts';
import nodeHeapV8Flags from './node-v8-heap-flags.json' with { type: 'json' };
import { markStartup } from './startup.ts';
import { compileWasmFromNodeModules, v8FlagList, type CompiledWasm } from './wasm-files.ts';

export interface ServerConfig {
  port: number;
  host: string;
  modelsDir: string;
  apiKey?: string;
  cors?: string[] | '*';
  /** How a new manifest in the models folder is noticed (edge/watch-models.ts). */
  reload: { watch: boolean; pollMs: number };
}

/** Milliseconds between periodic checks of the models folder, when FACET_RELOAD_POLL_MS is not set. */
export const DEFAULT_RELOAD_POLL_MS = 5000;

/** Default models: the shipped ones if compiled, else the test fixtures (said on startup). */
export const DEFAULT_MODELS = ['models/fashion-mnist', 'test/fixtures/edge/models'];

export async function serverConfig(argv: string[], env: Record<string, string | undefined>, exists: (p: string) => boolean): Promise<ServerConfig> {
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const port = Number(arg('port') ?? env.PORT ?? 8788);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`port must be an integer 0–65535; got ${arg('port') ?? env.PORT}`);
  const modelsDir = arg('models') ?? env.FACET_MODELS ?? DEFAULT_MODELS.find((d) => exists(`${d}/manifest.json`)) ?? DEFAULT_MODELS[0]!;
  const corsValue = env.FACET_CORS;
  const pollText = env.FACET_RELOAD_POLL_MS?.trim() || String(DEFAULT_RELOAD_POLL_MS);
  if (!/^\d+$/.test(pollText)) throw new Error(`FACET_RELOAD_POLL_MS must be a whole number of milliseconds (0: no periodic check); got "${env.FACET_RELOAD_POLL_MS}"`);
  const watchText = env.FACET_RELOAD_WATCH?.trim() || '1';
  if (watchText !== '0' && watchText !== '1') throw new Error(`FACET_RELOAD_WATCH must be 1 (watch the models folder) or 0 (do not); got "${env.FACET_RELOAD_WATCH}"`);
  return {
    port,
    host: arg('host') ?? env.HOST ?? '127.0.0.1',
    modelsDir,
    apiKey: env.FACET_API_KEY || undefined,
    cors: corsValue ? (corsValue === '*' ? '*' : corsValue.split(',').map((s) => s.trim())) : undefined,
    reload: { watch: watchText === '1', pollMs: Number(pollText) },
  };
}

/**
 * Build the app. Pass `wasm` when its compile was started earlier (entries start it before
 * anything else). The app's modules (hono, zod, onnxruntime-web, the codecs: most of the
 * JavaScript) are imported here, not at the top, so that evaluating them overlaps that compile;
 * in the esbuild bundle a dynamic import becomes a deferred module initialiser, so the same
 * holds for dist/edge-node.mjs. Starts onnxruntime's warm-up, without waiting for it.
 */
export async function buildServerApp(config: ServerConfig, wasm: Promise<CompiledWasm> = compileWasmFromNodeModules()): Promise<FacetApp> {
  const [{ createApp }, { FsModelStore }, { watchModelsFolder }] = await Promise.all([import('./app.ts'), import('./store-fs.ts'), import('./watch-models.ts')]);
  markStartup('modules-loaded');
  const store = new FsModelStore(config.modelsDir);
  const facet = await createApp({ store, wasm: await wasm, apiKey: config.apiKey, cors: config.cors });
  markStartup('app-created');
  // A server starts before its first request: initialise onnxruntime now (ModelPool.warmUp),
  // while the process gets to listening and the first request is on its way.
  void facet.pool.warmUp();
  // A compile or `facet subtasks remove` publishes a new manifest into the folder: serve it
  // without a restart (edge/served-models.ts says how the switch keeps requests whole).
  watchModelsFolder(store.location, () => facet.models.check(), config.reload);
  return facet;
}

/** Print a one-line startup failure (e.g. an invalid manifest) and exit non-zero. */
export function startupFailed(err: unknown): never {
  console.error(`facet edge: startup failed: ${(err as Error)?.message ?? err}`);
  process.exit(1);
}

/**
 * V8 heap sizing for the Node server (edge/node-v8-heap-flags.json), so that its resident memory
 * under steady load is flat from the first requests on (issue 6's load run, bench/load.ts: RSS
 * after 50,000 requests within 10% of after the first 1,000). Without them the server grew
 * 162 → 211 MiB while its live JS heap stayed at ~12 MiB: all of it V8 sizing, plus malloc (below).
 *
 * --semi-space-growth-factor=1: the young generation keeps the size it starts with (1 MiB
 * semi-spaces). By default V8 doubles it under a high allocation rate, up to 2 × 16 MiB, which
 * the load run reaches within a few thousand requests: RSS that never goes back.
 * (--max-semi-space-size would say it more plainly, but V8 reads it only when the heap is
 * created, so it works on the command line only; the growth factor is read at each growth, so
 * setting it here, first thing, works for every way of starting the server.)
 *
 * --heap-growing-percent=10 and --optimize-for-size: after a full GC the old generation may grow
 * by a small, fixed step before the next one, instead of V8's dynamic factor of up to 4× the
 * live size. Promoted garbage otherwise filled it from ~12 to ~35 MiB before the second full GC;
 * with these it saws within ~4 MiB (measured). Both are read at each GC, so they apply when set
 * at run time (--optimize-for-size is what selects the small minimum step).
 *
 * Cost, measured with bench/node-http.ts (concurrency 8, interleaved rounds of 8,000 requests,
 * shared 2-core machine): mean server CPU per request with these flags and the malloc setting
 * below, against V8's and glibc's defaults in the same run, 1.07× (6 rounds each) and 0.99×
 * (5 rounds); earlier variants of the settings 0.96–1.19×, while single rounds of one setting
 * spread ±15%. So at most a few percent, not resolved on this machine; req/s and p99 moved
 * within the same noise. The live heap is small (the models live in the wasm heap), so more
 * frequent collections are cheap.
 *
 * The malloc side, MALLOC_MMAP_THRESHOLD_=131072, can only be set before the process starts:
 * `npm run serve:node` sets it (README, "Memory").
 */
export const NODE_HEAP_V8_FLAGS: readonly string[] = nodeHeapV8Flags;

/** Set NODE_HEAP_V8_FLAGS, or FACET_NODE_HEAP_V8_FLAGS in their place (space-separated; empty for V8's defaults). */
export function tuneNodeHeap(env: Record<string, string | undefined> = process.env): void {
  for (const flag of v8FlagList(env.FACET_NODE_HEAP_V8_FLAGS, NODE_HEAP_V8_FLAGS)) setFlagsFromString(flag);
}

/**
 * The app's fetch as the Node server runs it: a 413 closes the connection. The app refuses a body
 * over the limit unread (from its Content-Length) or part-read; @hono/node-server then drains
 * what is still coming for at most 500 ms and destroys the socket. A client still uploading by
 * then (a slow link, a loaded machine) kept the connection alive for its next request and found it
 * closed under that request. `Connection: close` tells the client not to reuse it.
 */
export function closeAfter413<E>(fetch: (request: Request, env: E) => Response | Promise<Response>): (request: Request, env: E) => Promise<Response> {
  return async (request, env) => {
    const response = await fetch(request, env);
    if (response.status === 413) response.headers.set('connection', 'close');
    return response;
  };
}

/** Starts the server from the command line; exported for scripts/serve-node.mjs, which runs the bundle of this file. */
export async function main(): Promise<void> {
  markStartup('entry');
  // Before anything allocates much: the young generation must not have grown yet.
  tuneNodeHeap();
  const wasm = compileWasmFromNodeModules();
  // An unhandled rejection would end the process before buildServerApp reports it properly.
  wasm.catch(() => undefined);
  const { serve } = await import('@hono/node-server');
  const config = await serverConfig(process.argv.slice(2), process.env, existsSync);
  const { app } = await buildServerApp(config, wasm);
  const server = serve({ fetch: closeAfter413(app.fetch), port: config.port, hostname: config.host }, (info) => {
    markStartup('listening');
    console.log(`facet edge (node) serving ${config.modelsDir} on http://${config.host}:${info.port}`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('edge/node.ts')) {
  main().catch(startupFailed);
}
