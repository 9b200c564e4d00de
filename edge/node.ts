/**
 * Node entry: `tsx edge/node.ts [--port 8788] [--models DIR]`, or bundled (scripts/build-edge.ts)
 * and started with plain node by `npm run serve:node`. Env: PORT, FACET_MODELS,
 * FACET_API_KEY, FACET_CORS (comma-separated origins or *). Also used by Bun and Deno (see
 * bun.ts, deno.ts), which differ only in how they listen.
 */
import { existsSync } from 'node:fs';
import type { FacetApp } from './app.ts';
import { markStartup } from './startup.ts';
import { compileWasmFromNodeModules, type CompiledWasm } from './wasm-files.ts';

export interface ServerConfig {
  port: number;
  host: string;
  modelsDir: string;
  apiKey?: string;
  cors?: string[] | '*';
}

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
  return {
    port,
    host: arg('host') ?? env.HOST ?? '127.0.0.1',
    modelsDir,
    apiKey: env.FACET_API_KEY || undefined,
    cors: corsValue ? (corsValue === '*' ? '*' : corsValue.split(',').map((s) => s.trim())) : undefined,
  };
}

/**
 * Build the app. Pass `wasm` when its compile was started earlier (entries start it before
 * anything else). The app's modules (hono, zod, onnxruntime-web, the codecs: most of the
 * JavaScript) are imported here, not at the top, so that evaluating them overlaps that compile;
 * in the esbuild bundle a dynamic import becomes a deferred module initialiser, so the same
 * holds for dist/edge-node.mjs.
 */
export async function buildServerApp(config: ServerConfig, wasm: Promise<CompiledWasm> = compileWasmFromNodeModules()): Promise<FacetApp> {
  const [{ createApp }, { FsModelStore }] = await Promise.all([import('./app.ts'), import('./store-fs.ts')]);
  markStartup('modules-loaded');
  const facet = await createApp({ store: new FsModelStore(config.modelsDir), wasm: await wasm, apiKey: config.apiKey, cors: config.cors });
  markStartup('app-created');
  return facet;
}

/** Print a one-line startup failure (e.g. an invalid manifest) and exit non-zero. */
export function startupFailed(err: unknown): never {
  console.error(`facet edge: startup failed: ${(err as Error)?.message ?? err}`);
  process.exit(1);
}

/** Starts the server from the command line; exported for scripts/serve-node.mjs, which runs the bundle of this file. */
export async function main(): Promise<void> {
  markStartup('entry');
  const wasm = compileWasmFromNodeModules();
  // An unhandled rejection would end the process before buildServerApp reports it properly.
  wasm.catch(() => undefined);
  const { serve } = await import('@hono/node-server');
  const config = await serverConfig(process.argv.slice(2), process.env, existsSync);
  const { app } = await buildServerApp(config, wasm);
  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info) => {
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
