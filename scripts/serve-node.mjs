/**
 * `npm run serve:node [-- --port 8788 --models DIR]`: the Node edge server from its bundle,
 * dist/edge-node.mjs (scripts/build-edge.ts), run by plain node in this process.
 *
 * Plain JavaScript on purpose: this file must start without tsx, whose start-up is the time the
 * bundle saves. Before each start it hashes the sources listed in the bundle's inputs record
 * (a few milliseconds) and rebuilds the bundle when one changed or either file is missing, so a
 * start never serves stale code.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BUNDLE = join(ROOT, 'dist', 'edge-node.mjs');

/**
 * Why the bundle `out` must be rebuilt, or null when it is fresh: its inputs record
 * (`<out>.inputs.json`, repository-relative paths under `root` → sha256) matches the sources.
 */
export function staleReason(out = BUNDLE, root = ROOT) {
  let record;
  try {
    statSync(out);
    record = JSON.parse(readFileSync(`${out}.inputs.json`, 'utf8'));
  } catch (err) {
    return `${err.code === 'ENOENT' ? 'missing' : 'unreadable'}: ${err.path ?? out}`;
  }
  if (record?.schema !== 'facet.edge-bundle-inputs/1' || typeof record.inputs !== 'object' || record.inputs === null) return `${out}.inputs.json: not an inputs record`;
  for (const [path, sha256] of Object.entries(record.inputs)) {
    let actual;
    try {
      actual = createHash('sha256').update(readFileSync(join(root, path))).digest('hex');
    } catch {
      return `${path} is gone`;
    }
    if (actual !== sha256) return `${path} changed`;
  }
  return null;
}

async function start() {
  const reason = staleReason();
  if (reason) {
    console.error(`facet edge: building ${BUNDLE} (${reason})`);
    const build = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/build-edge.ts'), '--out', BUNDLE], { cwd: ROOT, stdio: 'inherit' });
    if (build.status !== 0) {
      console.error(`facet edge: startup failed: could not build ${BUNDLE} (exit ${build.status ?? build.signal})`);
      process.exit(1);
    }
  }
  const { main, startupFailed } = await import(pathToFileURL(BUNDLE).href);
  await main().catch(startupFailed);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await start();
