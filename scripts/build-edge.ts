/**
 * Bundles the Node edge server (edge/node.ts and everything it imports) into one ES module,
 * `dist/edge-node.mjs`, so that `npm run serve:node` starts with plain `node`: tsx's own
 * start-up and its per-module TypeScript transform cost ~2.4 s of a ~3.3 s cold start.
 *
 *   tsx scripts/build-edge.ts [--out dist/edge-node.mjs] [--if-possible]
 *
 * `npm install` runs it (the `prepare` script) with --if-possible: a failed build then only
 * warns, because serve-node.mjs builds a missing or stale bundle on its next start anyway, and
 * an edge source caught mid-edit must not fail an install.
 *
 * It also writes the same bundle as CommonJS (`dist/edge-node.cjs`), which serve-node.mjs
 * runs through V8's code cache; the ES module stays runnable on its own (`node dist/edge-node.mjs`).
 *
 * Beside the bundle it writes `<out>.inputs.json`: the sha256 of every file that went into it
 * (ours and the dependencies' in node_modules), which scripts/serve-node.mjs checks before each
 * start to rebuild a stale bundle. The bundle must stay inside the repository: it finds
 * node_modules (for the wasm files) from its own path.
 * Both files are written atomically (temp file, fsync, rename), so a server starting while
 * another process rebuilds reads either the old pair or the new one.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';

export const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
export const DEFAULT_OUT = join(ROOT, 'dist', 'edge-node.mjs');

/** The freshness record beside the bundle. */
export interface BundleInputs {
  schema: 'facet.edge-bundle-inputs/1';
  /** Repository-relative path → sha256 (hex) of its content at build time. */
  inputs: Record<string, string>;
  /**
   * Path → [size, mtimeMs] taken before hashing: serve-node.mjs skips hashing a file that still
   * has both (optional; without it every input is hashed).
   */
  stats?: Record<string, [number, number]>;
}

export const inputsFile = (out: string): string => `${out}.inputs.json`;
/**
 * The CommonJS twin of the bundle, which scripts/serve-node.mjs loads through V8's code cache
 * (Node 20 caches no compiled ES modules). `dist/edge-node.mjs` → `dist/edge-node.cjs`.
 */
export const cjsFile = (out: string): string => `${out.replace(/\.mjs$/, '')}.cjs`;

function writeAtomic(file: string, data: string | Uint8Array): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/**
 * esbuild comes with tsx (a dependency): resolve it from there, so the build uses the copy
 * npm installed for tsx rather than whichever one happens to be hoisted.
 */
async function loadEsbuild(): Promise<typeof import('esbuild')> {
  const fromTsx = createRequire(createRequire(import.meta.url).resolve('tsx/package.json'));
  return (await import(fromTsx.resolve('esbuild'))) as typeof import('esbuild');
}

export async function buildEdge(out: string = DEFAULT_OUT): Promise<{ out: string; bytes: number; inputs: number }> {
  const esbuild = await loadEsbuild();
  // One bundle of edge/node.ts, written twice: ESM (the default entry) and CommonJS (run through
  // V8's code cache by serve-node.mjs).
  const common = { entryPoints: [join(ROOT, 'edge/node.ts')], absWorkingDir: ROOT, bundle: true, platform: 'node', target: 'node20', write: false, logLevel: 'silent', legalComments: 'none' } satisfies import('esbuild').BuildOptions;
  const result = await esbuild.build({
    ...common,
    format: 'esm',
    metafile: true,
    // Dependencies go into the bundle too: resolving and loading hono, zod, onnxruntime-web and
    // the codecs module by module cost ~130 ms of the start (bench/edge-cold.ts). Their wasm
    // files are still read from node_modules (edge/wasm-files.ts resolves them from the bundle's
    // place in the repository). CommonJS dependencies (jpeg-js) need a `require` in ESM.
    banner: { js: "import { createRequire as __facetCreateRequire } from 'node:module'; const require = __facetCreateRequire(import.meta.url);" },
    outfile: out,
  });
  const js = result.outputFiles.find((f) => f.path === resolve(out));
  if (!js) throw new Error(`build-edge: esbuild wrote no ${out}`);
  // The same modules as CommonJS; import.meta.url (wasm-files.ts resolves node_modules from it)
  // becomes the file's own URL.
  const cjs = await esbuild.build({
    ...common,
    format: 'cjs',
    define: { 'import.meta.url': '__facetModuleUrl' },
    banner: { js: "const __facetModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
    outfile: cjsFile(out),
  });
  const cjsJs = cjs.outputFiles.find((f) => f.path === resolve(cjsFile(out)));
  if (!cjsJs) throw new Error(`build-edge: esbuild wrote no ${cjsFile(out)}`);
  const inputs: Record<string, string> = {};
  const stats: Record<string, [number, number]> = {};
  for (const path of Object.keys(result.metafile.inputs).sort()) {
    const abs = resolve(ROOT, path);
    // Stat before reading: a write in between leaves a newer mtime, so the file gets hashed.
    const { size, mtimeMs } = statSync(abs);
    inputs[relative(ROOT, abs)] = createHash('sha256').update(readFileSync(abs)).digest('hex');
    stats[relative(ROOT, abs)] = [size, mtimeMs];
  }
  const record: BundleInputs = { schema: 'facet.edge-bundle-inputs/1', inputs, stats };
  // Bundles first: a reader that sees the new inputs record also sees the bundles built from them.
  writeAtomic(out, js.contents);
  writeAtomic(cjsFile(out), cjsJs.contents);
  writeAtomic(inputsFile(out), JSON.stringify(record, null, 1) + '\n');
  return { out, bytes: js.contents.length, inputs: Object.keys(inputs).length };
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('scripts/build-edge.ts')) {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--out');
  const out = i >= 0 && argv[i + 1] ? resolve(argv[i + 1]!) : DEFAULT_OUT;
  const t0 = performance.now();
  buildEdge(out).then(
    (r) => console.error(`build-edge: ${relative(process.cwd(), r.out)} (${(r.bytes / 1024).toFixed(0)} KiB from ${r.inputs} sources) in ${Math.round(performance.now() - t0)} ms`),
    (err: unknown) => {
      const ifPossible = argv.includes('--if-possible');
      console.error(`build-edge: ${ifPossible ? 'warning: not built (serve:node will try again): ' : ''}${(err as Error)?.message ?? err}`);
      process.exit(ifPossible ? 0 : 1);
    },
  );
}
