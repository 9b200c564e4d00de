/** Bun entry: `bun edge/bun.ts [--port 8789] [--models DIR]` (same flags and env as edge/node.ts). */
import { existsSync } from 'node:fs';
import { DEFAULT_LIMITS } from './app.ts';
import { buildServerApp, serverConfig, startupFailed } from './node.ts';

declare const Bun: {
  serve(options: { fetch: (r: Request) => Response | Promise<Response>; port: number; hostname: string; maxRequestBodySize: number }): { port: number };
};

try {
  const config = await serverConfig(process.argv.slice(2), process.env, existsSync);
  const { app } = await buildServerApp(config);
  // Bun's own body cap would answer before Hono's bodyLimit; keep it above ours.
  const server = Bun.serve({ fetch: app.fetch, port: config.port, hostname: config.host, maxRequestBodySize: DEFAULT_LIMITS.maxBodyBytes * 2 });
  console.log(`facet edge (bun) serving ${config.modelsDir} on http://${config.host}:${server.port}`);
} catch (err) {
  startupFailed(err);
}
