/**
 * Deno entry: `deno run --v8-flags=--wasm-tiering-budget=18000000 --allow-net --allow-read
 * --allow-env edge/deno.ts [--port 8790]` (`npm run serve:deno`; same flags and env as
 * edge/node.ts; npm packages resolve from node_modules). Deno ignores V8 flags set at run time,
 * so the tiering budget of edge/wasm-files.ts goes on the command line (its other flag,
 * --wasm-lazy-validation, is not one Deno's V8 knows). Measured (6 starts each, shared
 * machine): ORT's first session 488 ms with it, 683 ms without.
 */
import { markStartup } from './startup.ts';
import { compileWasmFromNodeModules } from './wasm-files.ts';

markStartup('entry');
// First, so that the compile overlaps loading the app's modules (edge/wasm-files.ts).
const wasm = compileWasmFromNodeModules();
wasm.catch(() => undefined);

declare const Deno: {
  serve(options: { port: number; hostname: string; onListen?: (addr: { port: number }) => void }, handler: (r: Request) => Response | Promise<Response>): unknown;
};

const { buildServerApp, serverConfig, startupFailed } = await import('./node.ts');
try {
  const [{ existsSync }, { default: process }] = await Promise.all([import('node:fs'), import('node:process')]);
  const config = await serverConfig(process.argv.slice(2), process.env, existsSync);
  const { app } = await buildServerApp(config, wasm);
  Deno.serve(
    {
      port: config.port,
      hostname: config.host,
      onListen: ({ port }) => {
        markStartup('listening');
        console.log(`facet edge (deno) serving ${config.modelsDir} on http://${config.host}:${port}`);
      },
    },
    app.fetch,
  );
} catch (err) {
  startupFailed(err);
}
