/** Bun entry: `bun edge/bun.ts [--port 8789] [--models DIR]` (same flags and env as edge/node.ts). */
import { markStartup } from './startup.ts';
import { compileWasmFromNodeModules } from './wasm-files.ts';

markStartup('entry');
// First, so that the compile overlaps loading the app's modules (edge/wasm-files.ts).
const wasm = compileWasmFromNodeModules();
wasm.catch(() => undefined);

declare const Bun: {
  serve(options: { fetch: (r: Request) => Response | Promise<Response>; port: number; hostname: string; maxRequestBodySize: number }): { port: number };
};

const { buildServerApp, serverConfig, startupFailed } = await import('./node.ts');
try {
  const { existsSync } = await import('node:fs');
  const config = await serverConfig(process.argv.slice(2), process.env, existsSync);
  const { app } = await buildServerApp(config, wasm);
  const { DEFAULT_LIMITS } = await import('./limits.ts');
  // Bun's own body cap would answer before Hono's bodyLimit; keep it above ours.
  const server = Bun.serve({ fetch: app.fetch, port: config.port, hostname: config.host, maxRequestBodySize: DEFAULT_LIMITS.maxBodyBytes * 2 });
  markStartup('listening');
  console.log(`facet edge (bun) serving ${config.modelsDir} on http://${config.host}:${server.port}`);
} catch (err) {
  startupFailed(err);
}
