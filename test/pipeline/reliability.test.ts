/**
 * Compiler reliability (issue 6), through the real `facet compile` command on the tiny
 * fixture: SIGKILL at several points and a rerun give the artifacts of an uninterrupted
 * compile; an unwritable or full output directory fails clearly and leaves the previous
 * models alone; bad configs and data sets exit non-zero with a message, not a stack trace.
 *
 * Covered elsewhere, not repeated here: each config rule (config.test.ts), each IDX
 * corruption (test/data/idx.test.ts), the CLI's option checks (cli.test.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { cp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256File, type DoneRecord } from '../../compiler/pipeline/cache.ts';
import { parseManifest } from '../../shared/manifest.ts';
import { runFacet, writeTinyConfig, writeTinyDataset, type CliRun } from './helpers/tiny-files.ts';
import { tempDirs } from './helpers/temp.ts';

const temp = tempDirs();
afterAll(temp.cleanup);

/** The published full model's content-addressed file (compiler/pipeline/publish.ts). */
const FULL_MODEL_FILE = /^full\.[0-9a-f]{12}\.onnx$/;

/** The manifest in `out`, if any, names only files that are there with its checksums: the set is never torn. */
async function expectConsistentModels(out: string): Promise<void> {
  if (!(await exists(join(out, 'manifest.json')))) return;
  const manifest = parseManifest(JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')), 'manifest');
  for (const m of manifest.models) expect(await sha256File(join(out, m.file)).catch(() => 'missing'), m.file).toBe(m.sha256);
}

/** A finished stage directory: `<stage>-<20 hex>`. */
const STAGE_DIR = /^[a-z0-9_-]+-[0-9a-f]{20}$/;

let dataDir = '';
let configFile = '';
let reference = ''; // root of an uninterrupted compile: cache/ and out/

const compileArgs = (root: string, ...extra: string[]) => ['compile', '--config', configFile, '--threads', '1', '--prefetch', 'inline', '--quick', '--cache-dir', join(root, 'cache'), '--out', join(root, 'out'), ...extra];

/** The CLI's error path: a one-line-per-problem message, never a stack trace. */
function expectCleanFailure(run: CliRun, code: number, message: RegExp): void {
  expect(run.signal, run.stderr).toBeNull();
  expect(run.code, run.stderr).toBe(code);
  expect(run.stderr).toMatch(message);
  expect(run.stderr).not.toMatch(/^\s+at /m);
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

/** Every finished stage's artifact records (name → sha256 and size of each file). */
async function stageRecords(cache: string): Promise<Record<string, DoneRecord['files']>> {
  const out: Record<string, DoneRecord['files']> = {};
  for (const name of (await readdir(cache)).filter((n) => STAGE_DIR.test(n)).sort()) {
    out[name] = (JSON.parse(await readFile(join(cache, name, 'done.json'), 'utf8')) as DoneRecord).files;
  }
  return out;
}

beforeAll(async () => {
  dataDir = await temp.make('facet-rel-data-');
  await writeTinyDataset(dataDir);
  configFile = await writeTinyConfig(join(dataDir, 'tiny.json'), dataDir);
  reference = await temp.make('facet-rel-ref-');
  const run = await runFacet(compileArgs(reference));
  expect(run.code, run.stderr).toBe(0);
});

interface KillPoint {
  name: string;
  /** True once the child has reached the point; polled every few ms. */
  reached(root: string, stderr: string): Promise<boolean>;
}

const KILL_POINTS: KillPoint[] = [
  { name: 'base training, after a step checkpoint', reached: (root) => workCheckpoint(root, 'base-') },
  { name: 'a degradation stage (blur), after a step checkpoint', reached: (root) => workCheckpoint(root, 'degrade-blur-') },
  { name: 'stage 4 (distill), after a step checkpoint', reached: (root) => workCheckpoint(root, 'distill-') },
  { name: 'evaluation of the exported models', reached: async (_root, stderr) => stderr.includes('[eval-base] running') },
  { name: 'publishing (the new full model written, the manifest not yet)', reached: async (root) => (await readdir(join(root, 'out')).catch(() => [] as string[])).some((n) => FULL_MODEL_FILE.test(n)) },
];

/** A `<prefix><hash>.work/last.ckpt` checkpoint: the stage is mid-training and resumable. */
async function workCheckpoint(root: string, prefix: string): Promise<boolean> {
  const cache = join(root, 'cache');
  const names = await readdir(cache).catch(() => [] as string[]);
  for (const name of names) if (name.startsWith(prefix) && name.endsWith('.work') && (await exists(join(cache, name, 'last.ckpt')))) return true;
  return false;
}

/** Runs the compile until `point` is reached (polled every 5 ms), then SIGKILLs it. */
function killAt(root: string, point: KillPoint): Promise<CliRun> {
  let timer: NodeJS.Timeout | undefined;
  const run = runFacet(compileArgs(root, '--checkpoint-every', '1'), {
    onSpawn: (child: ChildProcess) => {
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      let polling = false;
      timer = setInterval(async () => {
        if (polling) return;
        polling = true;
        if (await point.reached(root, stderr)) {
          clearInterval(timer);
          child.kill('SIGKILL');
        }
        polling = false;
      }, 5);
    },
  });
  return run.finally(() => clearInterval(timer));
}

describe('facet compile killed with SIGKILL (tiny fixture, ort engine)', () => {
  it('resumes after a kill at each of five points and ends with the artifacts of an uninterrupted compile', async () => {
    expect(reference).not.toBe('');
    const root = await temp.make('facet-rel-kill-');
    const t0 = performance.now();
    const landed: string[] = [];
    for (const point of KILL_POINTS) {
      const killed = await killAt(root, point);
      expect(killed.signal, `the compile finished before "${point.name}":\n${killed.stderr}`).toBe('SIGKILL');
      await expectConsistentModels(join(root, 'out'));
      const finished = (await readdir(join(root, 'cache'))).filter((n) => STAGE_DIR.test(n)).length;
      landed.push(`${point.name}: ${finished} stages finished${(await exists(join(root, 'out', 'manifest.json'))) ? ', manifest written' : ''}`);
    }
    const killedSeconds = (performance.now() - t0) / 1000;
    // Each kill left the stage it hit resumable; the rerun finishes the compile.
    const rerun = await runFacet(compileArgs(root, '--checkpoint-every', '1'));
    expect(rerun.code, rerun.stderr).toBe(0);
    const cache = join(root, 'cache');
    for (const stage of ['base', 'degrade-blur', 'distill']) {
      const dir = (await readdir(cache)).find((n) => n.startsWith(`${stage}-`) && STAGE_DIR.test(n))!;
      const meta = (JSON.parse(await readFile(join(cache, dir, 'done.json'), 'utf8')) as DoneRecord).meta as { resumedFrom?: { batch: number } | null };
      expect(meta.resumedFrom, `${stage} resumed from its checkpoint`).toBeTruthy();
    }

    // Same stage keys and byte-identical artifacts (weights, exported ONNX, eval results) in every stage.
    expect(await stageRecords(cache)).toEqual(await stageRecords(join(reference, 'cache')));
    expect((await readdir(cache)).filter((n) => !STAGE_DIR.test(n))).toEqual([]); // no .work, .lock or .tmp- left
    // The shipped model and its manifest entry, and the full checkpoint beside them.
    const out = join(root, 'out');
    const refOut = join(reference, 'out');
    expect(await readFile(join(out, 'full.ckpt'))).toEqual(await readFile(join(refOut, 'full.ckpt')));
    const models = async (dir: string) =>
      parseManifest(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')), 'manifest').models.map(({ latencyMs: _measured, ...m }) => m);
    const shipped = await models(out);
    expect(shipped).toEqual(await models(refOut)); // same file names, so the same bytes
    await expectConsistentModels(out);
    // Nothing left over from the killed publishes: no temp files, no model file the manifest does not name.
    expect((await readdir(out)).filter((n) => n.endsWith('.onnx') || n.endsWith('.tmp'))).toEqual(shipped.map((m) => m.file));
    console.log(`kills landed at\n  ${landed.join('\n  ')}\nfive killed runs: ${killedSeconds.toFixed(1)} s; the rerun: ${rerun.stdout.match(/\d+ of \d+ stages ran/)?.[0]}`);
  });
});

describe('facet compile with an unwritable or full output directory', () => {
  it('fails before training when a component of --out is a regular file, naming the directory', async () => {
    const root = await temp.make('facet-rel-out-');
    await writeFile(join(root, 'models'), 'a file where a directory should be');
    // A path through a regular file is unwritable for root too (chmod would not stop root).
    const run = await runFacet(['compile', '--config', configFile, '--threads', '1', '--prefetch', 'inline', '--quick', '--cache-dir', join(root, 'cache'), '--out', join(root, 'models', 'tiny')]);
    expectCleanFailure(run, 1, new RegExp(`facet compile: output directory ${join(root, 'models', 'tiny')} is not writable: ENOTDIR`));
    expect(await exists(join(root, 'cache')), 'no stage ran').toBe(false);
  });

  it('a full disk while publishing fails naming the file, and leaves the previous models and manifest in place', async () => {
    expect(reference).not.toBe('');
    const root = await temp.make('facet-rel-full-');
    await cp(join(reference, 'cache'), join(root, 'cache'), { recursive: true });
    await cp(join(reference, 'out'), join(root, 'out'), { recursive: true });
    // A new stage-4 seed gives a different full model to publish; it is trained (seconds)
    // into the cache first, so the limited run below only publishes.
    const seeded = await writeTinyConfig(join(root, 'seeded.json'), dataDir, (json) => (json.stages.distill.seed = 1));
    const args = (outDir: string) => ['compile', '--config', seeded, '--threads', '1', '--prefetch', 'inline', '--quick', '--cache-dir', join(root, 'cache'), '--out', outDir];
    const trained = await runFacet(args(join(root, 'scratch')));
    expect(trained.code, trained.stderr).toBe(0);
    const out = join(root, 'out');
    const snapshot = async () => {
      const files: Record<string, { ino: number; mtimeMs: number; sha256: string }> = {};
      for (const name of (await readdir(out)).sort()) {
        const info = await stat(join(out, name));
        files[name] = { ino: info.ino, mtimeMs: info.mtimeMs, sha256: await sha256File(join(out, name)) };
      }
      return files;
    };
    const before = await snapshot();
    const previous = Object.keys(before).find((n) => FULL_MODEL_FILE.test(n))!;
    expect(Object.keys(before)).toEqual(expect.arrayContaining([previous, 'manifest.json', 'full.ckpt', 'report.json']));
    // The new full model (~25 KB) is the first big write. RLIMIT_FSIZE makes it fail with
    // EFBIG part-way, as ENOSPC would on a full disk; both reach the same code path.
    const limitKiB = 16;
    expect((await stat(join(out, previous))).size).toBeGreaterThan(limitKiB * 1024);
    const run = await runFacet(args(out), { fileSizeLimitKiB: limitKiB });
    expectCleanFailure(run, 1, new RegExp(`facet compile: cannot write ${out}/full\\.[0-9a-f]{12}\\.onnx: EFBIG`));
    expect(run.stderr).toContain('[eval-fusiondistill] cached'); // it failed publishing, not training
    expect(run.stderr).not.toContain(previous); // not the file being served
    // Untouched: same inodes (not even replaced by an equal copy), same bytes, no temp file left.
    expect(await snapshot()).toEqual(before);
    await expectConsistentModels(out);
  });
});

describe('facet compile errors for bad configs and data sets', () => {
  const compileWith = async (edit: (json: Record<string, any>) => void, dir = dataDir) => {
    const root = await temp.make('facet-rel-cfg-');
    const file = await writeTinyConfig(join(root, 'bad.json'), dir, edit);
    return { file, run: await runFacet(['compile', '--config', file, '--threads', '1', '--prefetch', 'inline', '--cache-dir', join(root, 'cache'), '--out', join(root, 'out')]), root };
  };

  it('an unknown key names the key and the file; exit 2', async () => {
    const { file, run } = await compileWith((json) => (json.stages.base.epochz = 3));
    expectCleanFailure(run, 2, new RegExp(`${file} is not a valid compile config:\\n\\s+stages\\.base: .*epochz`));
  });

  it('an out-of-range value names the field and the range; exit 2', async () => {
    const { file, run } = await compileWith((json) => (json.dataset.validation = 1.5));
    expectCleanFailure(run, 2, new RegExp(`${file} is not a valid compile config:\\n\\s+dataset\\.validation: .*1`));
  });

  it('a subtask class that is not in the data set names the class; exit 2, nothing trained', async () => {
    const { file, run, root } = await compileWith((json) => (json.subtasks = [{ name: 'shoes', classes: ['3', 'Sandal'], flopsFraction: 0.25 }]));
    expectCleanFailure(run, 2, new RegExp(`${file}: subtasks\\.0\\.classes\\.1: no class named "Sandal"`));
    expect(await exists(join(root, 'cache'))).toBe(false);
  });

  it('a truncated data set file names the file and the problem; exit 1', async () => {
    const dir = await temp.make('facet-rel-corrupt-');
    await cp(dataDir, dir, { recursive: true, filter: (src) => !src.endsWith('.json') });
    const images = join(dir, 'train-images-idx3-ubyte.gz');
    const gz = await readFile(images);
    await writeFile(images, gz.subarray(0, gz.length >> 1));
    const { run } = await compileWith(() => {}, dir);
    expectCleanFailure(run, 1, new RegExp(`facet compile: ${images}: .*truncated`));
  });
});
