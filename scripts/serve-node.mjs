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
 * A file whose size and mtime equal the record's `stats` entry counts as unchanged unread;
 * any other is hashed, so a touched but unchanged file does not force a rebuild.
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
  const stats = typeof record.stats === 'object' && record.stats !== null ? record.stats : {};
  for (const [path, sha256] of Object.entries(record.inputs)) {
    const file = join(root, path);
    let stat;
    try {
      stat = statSync(file);
    } catch {
      return `${path} is gone`;
    }
    // Same size and modification time as when the bundle was built: unchanged, without reading
    // it. Hashing all ~160 inputs (1.3 MB) took 15–60 ms of every start on the shared machine.
    const known = stats[path];
    if (Array.isArray(known) && known[0] === stat.size && known[1] === stat.mtimeMs) continue;
    let actual;
    try {
      actual = createHash('sha256').update(readFileSync(file)).digest('hex');
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
