/**
 * Publishing into a models directory (`models/<dataset>/`), the one the edge serves.
 *
 * The manifest and the model files it names must change together: a reader (the edge, a
 * deploy, a `--from` compile) sees the previous set or the next one, never a mix, and a
 * killed or failing compile leaves the previous set serving. Renaming several files is not
 * atomic, so model files get content-addressed names (`<id>.<sha256 prefix>.onnx`): new
 * files land beside the old ones without touching them, the manifest's atomic rename is the
 * single commit point, and only after it are the files no manifest names removed.
 *
 * One writer per directory (a compile); readers need no lock.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MANIFEST_SCHEMA_ID, parseManifest, type Manifest, type ModelEntry } from '../../shared/manifest.ts';
import { countGraph } from '../graph/count.ts';
import type { Graph } from '../graph/ir.ts';
import { parseGraphJson } from '../graph/arch.ts';
import { sha256File, writeFileAtomic, type StageResult } from './cache.ts';
import { ONNX_FILE, readEval, type PublishEnv } from './compile.ts';
import { medianLatencyMs, toAccuracyReport } from './evaluate.ts';
import { renderReportHtml, type Report } from './report.ts';
import { readOutcome, type SubtaskOutcome } from './subtasks.ts';

export const MANIFEST_FILE = 'manifest.json';
const ROOT = join(dirname(new URL(import.meta.url).pathname), '../..');

/** `<id>.<first 12 hex of sha256>.onnx`: a new model never overwrites the file of an old one. */
export function modelFileName(id: string, sha256: string): string {
  return `${id}.${sha256.slice(0, 12)}.onnx`;
}

/** Model files this module may remove when unreferenced: content-addressed ones and the older plain `<id>.onnx`. */
const MODEL_FILE = /^[A-Za-z0-9_-]+(\.[0-9a-f]{12})?\.onnx$/;
/** Leftovers of a writeFileAtomic that was killed before its rename. */
const TEMP_FILE = /^\.[0-9a-f]{12}\.tmp$/;

export interface StagedModel {
  /** The manifest entry, without `file`, `bytes` and `sha256`: those come from `onnx`. */
  entry: Omit<ModelEntry, 'file' | 'bytes' | 'sha256'>;
  onnx: Uint8Array;
}

/** Reads and validates `<dir>/manifest.json`; undefined when there is none yet. */
export async function readManifest(dir: string): Promise<Manifest | undefined> {
  const file = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
  return parseManifest(json, file);
}

/** Whether `path` exists with this sha256. */
const hasSha256 = (path: string, sha256: string): Promise<boolean> => sha256File(path).then((h) => h === sha256, () => false);

/** Whether `entry.file` is in `dir` with the manifest's checksum. */
export function entryIntact(dir: string, entry: ModelEntry): Promise<boolean> {
  return hasSha256(join(dir, entry.file), entry.sha256);
}

/**
 * Writes `staged` models under content-addressed names, then commits `next(entries)` as the
 * manifest, then removes model files and temp files that the new manifest does not name.
 * `next` gets the staged models' complete entries and returns the whole manifest to commit.
 * Returns the paths written.
 */
export async function commitModels(dir: string, staged: StagedModel[], next: (entries: ModelEntry[]) => Manifest, log: (line: string) => void = () => {}): Promise<string[]> {
  await removeTempFiles(dir);
  const written: string[] = [];
  const entries: ModelEntry[] = [];
  for (const { entry, onnx } of staged) {
    const sha256 = createHash('sha256').update(onnx).digest('hex');
    const file = modelFileName(entry.id, sha256);
    const path = join(dir, file);
    // Same name, same content: a rerun that changed nothing rewrites nothing.
    if (!(await hasSha256(path, sha256))) await writeFileAtomic(path, onnx);
    written.push(path);
    entries.push({ ...entry, file, bytes: onnx.length, sha256 } as ModelEntry);
  }
  const manifest = parseManifest(next(entries), `manifest for ${dir}`);
  const manifestPath = join(dir, MANIFEST_FILE);
  await writeFileAtomic(manifestPath, JSON.stringify(manifest, null, 1));
  written.push(manifestPath);
  // Committed: what the manifest does not name is garbage now.
  const keep = new Set(manifest.models.map((m) => m.file));
  for (const name of await readdir(dir)) {
    if (MODEL_FILE.test(name) && !keep.has(name)) {
      await rm(join(dir, name), { force: true });
      log(`removed ${join(dir, name)} (no longer in the manifest)`);
    }
  }
  return written;
}

async function removeTempFiles(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) if (TEMP_FILE.test(name)) await rm(join(dir, name), { force: true });
}

/**
 * Publishes the shipped FusionDistill model as the manifest's `full` entry (publish.ts:
 * content-addressed file, the manifest's rename commits it). Subtask entries already there
 * stay while their files are intact; the subtask stages replace them next.
 */
export async function publishFull(env: PublishEnv, graph: Graph): Promise<string[]> {
  const { config, data } = env;
  const evalStage = env.results.get('eval-fusiondistill');
  if (!evalStage) throw new Error('publish: the FusionDistill model was not evaluated');
  const onnx = new Uint8Array(await readFile(join(evalStage.dir, ONNX_FILE)));
  const counts = countGraph(graph);
  const accuracy = toAccuracyReport((await readEval(evalStage)).summary);
  const labels = data.test.classNames;
  const previous = await readManifest(env.outDir).catch((err: Error) => {
    env.log(`publish: the previous manifest is replaced: ${err.message}`);
    return undefined;
  });
  const kept: ModelEntry[] = [];
  for (const m of previous && previous.dataset === config.dataset.name ? previous.models : []) if (m.subtask !== null && (await entryIntact(env.outDir, m))) kept.push(m);
  const staged = {
    id: 'full',
    subtask: null,
    classes: labels.map((label, index) => ({ index, label })),
    input: { name: 'input', layout: 'NCHW' as const, height: data.test.height, width: data.test.width, channels: data.test.channels, mean: config.dataset.mean, std: config.dataset.std },
    output: 'logits',
    macs: counts.macs,
    params: counts.params,
    accuracy,
    latencyMs: await medianLatencyMs(onnx, { c: data.test.channels, h: data.test.height, w: data.test.width }),
    configHash: env.configHash,
  };
  const compilerVersion = await readCompilerVersion();
  const files = await commitModels(
    env.outDir,
    [{ entry: staged, onnx }],
    ([full]): Manifest => ({ schema: MANIFEST_SCHEMA_ID, dataset: config.dataset.name, labels, createdAt: new Date().toISOString(), compilerVersion, models: [full!, ...kept] }),
    env.log,
  );
  env.log(`wrote ${files.join(' and ')}`);
  return files;
}

async function readCompilerVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * Adds or replaces the compiled subtasks' models in the manifest in `outDir` (the full
 * model's entry stays as it is). Subtasks already there and not compiled now are kept while
 * their file is intact; the others are dropped with a log line.
 */
export async function publishSubtasks(outDir: string, configHash: string, results: Map<string, StageResult>, log: (line: string) => void): Promise<string[]> {
  const manifestFile = join(outDir, MANIFEST_FILE);
  const manifest = await readManifest(outDir);
  if (!manifest) throw new Error(`${manifestFile}: missing; publish the full model first`);
  const full = manifest.models.find((m) => m.subtask === null);
  if (!full) throw new Error(`${manifestFile}: has no full model (subtask null)`);
  const staged: StagedModel[] = [];
  for (const [name, result] of results) {
    const outcome = await readOutcome(result);
    const onnx = new Uint8Array(await readFile(join(result.dir, 'model.onnx')));
    const graph = parseGraphJson(await readFile(join(result.dir, 'graph.json'), 'utf8'), join(result.dir, 'graph.json'));
    const counts = countGraph(graph);
    staged.push({
      onnx,
      entry: {
        ...full,
        id: name,
        subtask: name,
        classes: outcome.classes.map((index, j) => ({ index, label: outcome.labels[j]! })),
        macs: counts.macs,
        params: counts.params,
        accuracy: toAccuracyReport(outcome.catro.after),
        latencyMs: await medianLatencyMs(onnx, { c: full.input.channels, h: full.input.height, w: full.input.width }),
        configHash,
      },
    });
  }
  const kept: ModelEntry[] = [];
  for (const old of manifest.models) {
    if (old.subtask === null || results.has(old.id)) continue;
    if (await entryIntact(outDir, old)) kept.push(old);
    else log(`manifest: dropped subtask model ${old.id}: ${old.file} is missing or does not match its checksum`);
  }
  const files = await commitModels(
    outDir,
    staged,
    (entries) => ({ ...manifest, schema: MANIFEST_SCHEMA_ID, createdAt: new Date().toISOString(), models: [full, ...[...entries, ...kept].sort((a, b) => a.id.localeCompare(b.id))] }),
    log,
  );
  log(`manifest: ${manifest.models.length} → ${staged.length + kept.length + 1} models`);
  return files;
}

/** The report files beside a manifest: report.json (the data) and report.html (rendered from it). */
export const REPORT_FILES = { json: 'report.json', html: 'report.html' } as const;

/**
 * Updates the subtask rows of the report in `dir`: rows named in `drop` go, `add` are appended,
 * and report.html is rendered again from the result. A folder without a report.json (a `--from`
 * folder may have none) is left without; an unreadable one is left as it is, with a log line
 * (the models are published by then, and the report only describes them). Returns the files written.
 */
export async function updateReportSubtasks(dir: string, drop: ReadonlySet<string>, add: SubtaskOutcome[], log: (line: string) => void): Promise<string[]> {
  const file = join(dir, REPORT_FILES.json);
  let report: Report;
  try {
    report = JSON.parse(await readFile(file, 'utf8')) as Report;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log(`${file}: not updated, it cannot be read: ${(err as Error).message}`);
    return [];
  }
  const next: Report = { ...report, subtasks: [...(report.subtasks ?? []).filter((o) => !drop.has(o.name)), ...add] };
  const html = join(dir, REPORT_FILES.html);
  await writeFileAtomic(file, JSON.stringify(next, null, 1));
  await writeFileAtomic(html, renderReportHtml(next));
  return [file, html];
}

/** A subtask name that cannot be removed: the user's mistake, not the folder's. */
export class SubtaskNameError extends Error {
  override name = 'SubtaskNameError';
}

/**
 * Removes subtask models from the models folder `dir` with the same commit as a compile's
 * publish (commitModels: the manifest's rename commits, then the files it no longer names are
 * deleted), so a server serving the folder sees the set with them or without them, never a mix;
 * their rows leave the report. The full model cannot be removed: it answers every request that
 * no subtask covers. Throws SubtaskNameError for a name that is not a subtask of the manifest,
 * naming the manifest and the subtasks it has, before anything is written.
 */
export async function removeSubtasks(dir: string, names: string[], log: (line: string) => void = () => {}): Promise<{ removed: ModelEntry[]; manifest: Manifest; files: string[] }> {
  const file = join(dir, MANIFEST_FILE);
  const manifest = await readManifest(dir);
  if (!manifest) throw new Error(`${file}: missing; is ${dir} a models folder written by facet compile?`);
  const subtasks = manifest.models.filter((m) => m.subtask !== null);
  const full = manifest.models.find((m) => m.subtask === null)!;
  const removed = names.map((name) => {
    if (name === full.id) throw new SubtaskNameError(`"${name}" is the full model of ${file}, which cannot be removed: it answers every request that no subtask covers`);
    const entry = subtasks.find((m) => m.subtask === name);
    if (!entry) throw new SubtaskNameError(`${file} has no subtask "${name}"; its subtasks: ${subtasks.map((m) => m.subtask).join(', ') || '(none)'}`);
    return entry;
  });
  const gone = new Set(removed);
  const files = await commitModels(dir, [], () => ({ ...manifest, createdAt: new Date().toISOString(), models: manifest.models.filter((m) => !gone.has(m)) }), log);
  files.push(...(await updateReportSubtasks(dir, new Set(removed.map((m) => m.subtask!)), [], log)));
  return { removed, manifest: (await readManifest(dir))!, files };
}
