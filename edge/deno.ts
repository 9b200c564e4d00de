/**
 * Deno entry: `deno run --allow-net --allow-read --allow-env edge/deno.ts [--port 8790]`
 * (same flags and env as edge/node.ts; npm packages resolve from node_modules).
 */
import { existsSync } from 'node:fs';
import process from 'node:process';
import { buildServerApp, serverConfig, startupFailed } from './node.ts';

declare const Deno: {
  serve(options: { port: number; hostname: string; onListen?: (addr: { port: number }) => void }, handler: (r: Request) => Response | Promise<Response>): unknown;
};

try {
  const config = await serverConfig(process.argv.slice(2), process.env, existsSync);
  const { app } = await buildServerApp(config);
  Deno.serve({ port: config.port, hostname: config.host, onListen: ({ port }) => console.log(`facet edge (deno) serving ${config.modelsDir} on http://${config.host}:${port}`) }, app.fetch);
} catch (err) {
  startupFailed(err);
}
