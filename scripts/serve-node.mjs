/**
 * `npm run serve:node [-- --port 8788 --models DIR]`: the Node edge server from its bundle,
 * dist/edge-node.cjs (scripts/build-edge.ts), run by plain node in this process through V8's
 * code cache (runCached).
 *
 * Plain JavaScript on purpose: this file must start without tsx, whose start-up is the time the
 * bundle saves. Before each start it hashes the sources listed in the bundle's inputs record
 * (a few milliseconds) and rebuilds the bundle when one changed or either file is missing, so a
 * start never serves stale code.
 *
 * `npm run serve:node` starts it with MALLOC_MMAP_THRESHOLD_=131072 in the environment. glibc
 * otherwise raises its mmap threshold each time a large block it had mmap'ed is freed, after
 * which blocks of that size come from its arenas and stay there when freed. In the load run
 * (bench/load.ts) that left ~16 MiB more resident after 8,000 requests than after 1,000, in one
 * thread arena, never returned. It follows the wasm code's tier-up (most likely V8's optimising
 * compilers' zones): with V8's default wasm tiering budget the same growth came within the
 * first 1,000 requests instead. With the threshold fixed they are unmapped when freed;
 * resident memory is also ~25 MiB lower overall. (MALLOC_ARENA_MAX=1 fixes the growth too, with a
 * higher baseline.) glibc reads it only at process start, so it cannot be set from here; the V8
 * heap flags set below are the other half (edge/node.ts says why).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BUNDLE = join(ROOT, 'dist', 'edge-node.mjs');
/** The bundle as CommonJS (scripts/build-edge.ts writes both); this is the one started. */
export const BUNDLE_CJS = join(ROOT, 'dist', 'edge-node.cjs');

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

/**
 * Run a CommonJS file through V8's code cache, `<file>.v8cache`. Returns its exports, what
 * became of the cache (`used`, `rejected`: V8 checks the source, its own version and its flags,
 * or `none`) and `writeCache()`, which writes the cache anew (atomically; a failed write only
 * costs the next start its use). Called after the server has answered its first request, the
 * cache holds the functions compiled by then too, not just the top level.
 * Node 20 caches no compiled ES modules (module.enableCompileCache is 22.1+): compiling the
 * 1.3 MB bundle took 60–120 ms of every start on the shared 2-core machine, 27–35 ms with the
 * cache of its top level.
 */
export function runCached(file) {
  const source = readFileSync(file, 'utf8');
  const cacheFile = `${file}.v8cache`;
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const script = new vm.Script(wrapped, { filename: file, cachedData, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER });
  const module = { exports: {} };
  script.runInThisContext().call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  const cache = cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'used';
  const writeCache = () => {
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    try {
      const fd = openSync(tmp, 'w');
      try {
        writeSync(fd, script.createCachedData());
        // A torn file after a crash must not stand in for the cache.
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, cacheFile);
    } catch {
      // dist/ not writable, or the cache path taken: run without a cache.
      rmSync(tmp, { force: true });
    }
  };
  return { exports: module.exports, cache, writeCache };
}

/** A space-separated override from the environment, or the list in `file`. */
function flagList(override, file) {
  return override !== undefined ? override.split(/\s+/).filter(Boolean) : JSON.parse(readFileSync(join(ROOT, 'edge', file), 'utf8'));
}

/**
 * The V8 flags the bundle's code sets too, set here first: the code cache is made and used
 * under the same flags. Those edge/wasm-files.ts sets (edge/wasm-v8-flags.json, or
 * FACET_WASM_V8_FLAGS), and the JS heap sizing edge/node.ts sets (edge/node-v8-heap-flags.json,
 * or FACET_NODE_HEAP_V8_FLAGS; edge/node.ts says why).
 */
function setV8Flags(env = process.env) {
  const flags = [...flagList(env.FACET_WASM_V8_FLAGS, 'wasm-v8-flags.json'), ...flagList(env.FACET_NODE_HEAP_V8_FLAGS, 'node-v8-heap-flags.json')];
  for (const flag of flags) v8.setFlagsFromString(flag);
}

/** When to write a missing or rejected code cache: after the first answers, while idle. */
const CACHE_WRITE_DELAY_MS = 3000;

async function start() {
  const reason = staleReason() ?? (existsSync(BUNDLE_CJS) ? null : `missing: ${BUNDLE_CJS}`);
  if (reason) {
    console.error(`facet edge: building ${BUNDLE} (${reason})`);
    const build = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/build-edge.ts'), '--out', BUNDLE], { cwd: ROOT, stdio: 'inherit' });
    if (build.status !== 0) {
      console.error(`facet edge: startup failed: could not build ${BUNDLE} (exit ${build.status ?? build.signal})`);
      process.exit(1);
    }
  }
  setV8Flags();
  const { exports, cache, writeCache } = runCached(BUNDLE_CJS);
  if (process.env.FACET_TRACE_STARTUP === '1') console.error(`facet-startup-code-cache ${cache}`);
  const { main, startupFailed } = exports;
  await main().catch(startupFailed);
  if (cache !== 'used') setTimeout(writeCache, CACHE_WRITE_DELAY_MS).unref();
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await start();
