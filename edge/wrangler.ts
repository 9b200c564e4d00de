/**
 * `npm start` / `npm run deploy`: run wrangler with the model folder as the Worker's static
 * assets — FACET_MODELS, else the compiled models (models/fashion-mnist) when they exist, else
 * the test fixture models (said loudly). Local dev binds loopback only, sends no telemetry,
 * fetches no Request.cf data and needs no login.
 *
 * A deploy uploads the folder as it is then, so a subtask compiled into it (or removed with
 * `facet subtasks remove`) reaches Workers with the next `npm run deploy`: Workers cannot watch
 * files, and a deploy starts new isolates, which read the new manifest on their first request.
 *
 *   tsx edge/wrangler.ts dev [--port 8787] [more wrangler args]
 *   tsx edge/wrangler.ts deploy [--dry-run --outdir DIR]
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { bundleDemoClient, generatedModule } from './demo/build.ts';
import { DEFAULT_MODELS } from './node.ts';
import { WRANGLER_ENV } from './wrangler-env.ts';

const [command = 'dev', ...rest] = process.argv.slice(2);
const models = process.env.FACET_MODELS ?? DEFAULT_MODELS.find((d) => existsSync(`${d}/manifest.json`));
if (!models) {
  console.error(`facet edge: no models found (looked for ${DEFAULT_MODELS.map((d) => `${d}/manifest.json`).join(', ')}); run the compiler or scripts/make-fixture-models.ts`);
  process.exit(1);
}
if (!process.env.FACET_MODELS && models !== DEFAULT_MODELS[0]) console.warn(`facet edge: ${DEFAULT_MODELS[0]} has no manifest.json yet; serving the test fixture models from ${models}`);

// wrangler bundles the committed demo script; refresh it first so start/deploy never ship a stale one.
{
  const { readFileSync, writeFileSync } = await import('node:fs');
  const path = new URL('./demo/client.gen.ts', import.meta.url);
  const fresh = generatedModule(await bundleDemoClient());
  if (readFileSync(path, 'utf8') !== fresh) writeFileSync(path, fresh);
}

const args = [command, '--assets', models, ...rest];
if (command === 'dev' && !rest.includes('--ip')) args.push('--ip', '127.0.0.1');
if (command === 'dev' && !rest.includes('--port')) args.push('--port', '8787');
const wrangler = createRequire(import.meta.url).resolve('wrangler/bin/wrangler.js');
// A user's own CLOUDFLARE_CF_FETCH_ENABLED wins; telemetry stays off.
const env = { ...WRANGLER_ENV, ...process.env, WRANGLER_SEND_METRICS: WRANGLER_ENV.WRANGLER_SEND_METRICS };
const child = spawn(process.execPath, [wrangler, ...args], { stdio: 'inherit', env });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
