/**
 * Content-addressed stage cache. A stage's directory is named by the hash of everything
 * that determines its output — its config slice, the checksums of its input artifacts and
 * the version of the code that matters — so a rerun with nothing changed finds it and does
 * no work, and a change reaches exactly the stages downstream of it (their input checksums
 * change in turn).
 *
 * Layout under the cache dir:
 *   <stage>-<hash>/           finished artifacts + done.json (appears only by an atomic rename)
 *   <stage>-<hash>.work/      the stage's checkpoints while it runs; kept if it dies, so the
 *                             next run resumes; removed once the stage is done. Its
 *                             .stage-time.json carries the wall time of earlier runs
 *   .tmp-<stage>-<hash>-…/    artifacts being written; never read, swept on the next run
 *   <stage>-<hash>.lock       held while a process runs the stage (pid and host inside)
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, relative } from 'node:path';

/** How often a running stage records its wall time in its work dir, for a resumed run to add to. */
export const STAGE_TIME_TICK_MS = 10_000;
const STAGE_TIME_FILE = '.stage-time.json';

/** Bump when the cache layout or hashing changes: every key changes with it. */
const CACHE_FORMAT = 1;

export interface StageKey {
  /** Stage name, used in the directory name: lowercase letters, digits, '-' and '_'. */
  name: string;
  /** The config slice the stage reads (JSON-serializable). */
  config: unknown;
  /** Input artifacts by role, as sha256 hex checksums. */
  inputs: Record<string, string>;
  /** Version of the code that determines the output (e.g. {@link hashSources}). */
  code: string;
}

export interface FileRecord {
  sha256: string;
  bytes: number;
}

export interface DoneRecord {
  stage: string;
  hash: string;
  key: StageKey;
  startedAt: string;
  finishedAt: string;
  /**
   * Wall time of the stage function, summed over every run it took: a stage killed and
   * resumed reports what it cost in all (a killed run counts up to its last
   * {@link STAGE_TIME_TICK_MS} tick), not only its last part.
   */
  wallMs: number;
  /** How many runs the stage took: 1 unless it was killed and resumed. Absent in records from before it was kept. */
  runs?: number;
  /** Every artifact file, relative to the stage dir (done.json excluded). */
  files: Record<string, FileRecord>;
  /** Whatever the stage function returned (e.g. training history). */
  meta: unknown;
}

export interface StageContext {
  /** Write artifacts here; it becomes the stage directory when the function returns. */
  outDir: string;
  /** Persistent across runs of the same key until the stage is done: put resumable checkpoints here. */
  workDir: string;
}

export interface StageResult {
  dir: string;
  hash: string;
  /** True when the stage was already done and nothing ran. */
  cached: boolean;
  done: DoneRecord;
  /** sha256 of an artifact file; throws naming the stage if it has no such file. */
  checksum(file: string): string;
}

/** JSON with object keys sorted, so equal values hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
    }
    if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`cannot hash non-finite number ${v}`);
    return v;
  });
}

export function stageHash(key: StageKey): string {
  return createHash('sha256').update(canonicalJson({ format: CACHE_FORMAT, ...key })).digest('hex').slice(0, 20);
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Version of a set of source files: a hash of their paths (relative to `root`) and contents. */
export async function hashSources(files: string[], root: string): Promise<string> {
  const hash = createHash('sha256');
  for (const file of [...files].sort()) {
    let text: Buffer;
    try {
      text = await readFile(file);
    } catch (err) {
      throw new Error(`code version: cannot read ${file}: ${(err as Error).message}`);
    }
    hash.update(relative(root, file)).update('\0').update(text).update('\0');
  }
  return hash.digest('hex').slice(0, 20);
}

/**
 * {@link hashSources} of the code at `paths` (relative to `root`): files, and the .ts,
 * .mjs and .proto files directly inside folders. A file listed twice counts once.
 */
export async function hashCode(paths: string[], root: string): Promise<string> {
  const files = new Set<string>();
  for (const p of paths) {
    const abs = join(root, p);
    if ((await stat(abs)).isFile()) files.add(abs);
    else for (const name of await readdir(abs)) if (/\.(ts|mjs|proto)$/.test(name)) files.add(join(abs, name));
  }
  return hashSources([...files], root);
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Write a file so that readers see either the old content or all of the new: temp file in
 * the same dir, fsync, rename. On failure (full disk, unwritable dir) the old file stays,
 * the temp file is removed (it would hold the space a full disk lacks), and the error names
 * `path` — fs errors from a write name no file — keeping the fs error's `code`.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    const failure = new Error(`cannot write ${path}: ${(err as Error).message}`, { cause: err }) as NodeJS.ErrnoException;
    failure.code = (err as NodeJS.ErrnoException).code;
    throw failure;
  }
  await fsyncPath(dirname(path));
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(join(dir, entry.name), rel)));
    else if (entry.isFile()) out.push(rel);
    else throw new Error(`stage artifact ${join(dir, entry.name)} is not a plain file or directory`);
  }
  return out.sort();
}

/** A finished stage dir, or undefined when it is absent, incomplete or not this key's. */
async function readDone(dir: string, hash: string): Promise<DoneRecord | undefined> {
  let done: DoneRecord;
  try {
    done = JSON.parse(await readFile(join(dir, 'done.json'), 'utf8')) as DoneRecord;
  } catch {
    return undefined;
  }
  if (done.hash !== hash || typeof done.files !== 'object') return undefined;
  for (const [file, rec] of Object.entries(done.files)) {
    const info = await stat(join(dir, file)).catch(() => undefined);
    if (!info || info.size !== rec.bytes) return undefined;
  }
  return done;
}

function result(dir: string, hash: string, cached: boolean, done: DoneRecord): StageResult {
  return {
    dir,
    hash,
    cached,
    done,
    checksum(file) {
      const rec = done.files[file];
      if (!rec) throw new Error(`stage ${done.stage} (${dir}) has no artifact "${file}"`);
      return rec.sha256;
    },
  };
}

export interface RunStageOptions {
  /** Re-hash every artifact of a cached stage and rerun it if any differs (default: sizes only). */
  verify?: boolean;
}

/**
 * A stage's wall time across runs: what earlier (killed) runs recorded in `file`, plus this
 * run, recorded again every tick so the next run can resume the count.
 */
async function stageClock(file: string): Promise<{ total(): { wallMs: number; runs: number }; stop(): Promise<void> }> {
  const earlier = await readFile(file, 'utf8')
    .then((text) => JSON.parse(text) as { wallMs?: unknown; runs?: unknown })
    .catch(() => ({}) as { wallMs?: unknown; runs?: unknown });
  const priorMs = typeof earlier.wallMs === 'number' && earlier.wallMs >= 0 ? earlier.wallMs : 0;
  const runs = (typeof earlier.runs === 'number' && earlier.runs >= 0 ? earlier.runs : 0) + 1;
  const t0 = performance.now();
  const total = () => ({ wallMs: priorMs + performance.now() - t0, runs });
  // Writes are chained, so the last one has landed when stop() returns (the work dir may go next).
  let writing: Promise<void> = Promise.resolve();
  const record = () => {
    writing = writing.then(() => writeFileAtomic(file, JSON.stringify(total()))).catch(() => undefined);
  };
  record();
  const timer = setInterval(record, STAGE_TIME_TICK_MS);
  timer.unref();
  return {
    total,
    async stop() {
      clearInterval(timer);
      record(); // a stage that failed resumes from here: its time so far counts
      await writing;
    },
  };
}

/**
 * Run `fn` unless a finished stage with this key exists. `fn` writes its artifacts into
 * `ctx.outDir`; they are fsynced, checksummed into done.json and renamed into place in one
 * step, so a crash at any point leaves either no stage dir or a complete one.
 */
export async function runStage(cacheDir: string, key: StageKey, fn: (ctx: StageContext) => Promise<unknown>, options: RunStageOptions = {}): Promise<StageResult> {
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(key.name)) throw new Error(`stage name "${key.name}": use lowercase letters, digits, "-" and "_"`);
  const hash = stageHash(key);
  const id = `${key.name}-${hash}`;
  const dir = join(cacheDir, id);
  const workDir = join(cacheDir, `${id}.work`);

  const usable = async (): Promise<DoneRecord | undefined> => {
    const done = await readDone(dir, hash);
    return done && (!options.verify || (await checksumsMatch(dir, done))) ? done : undefined;
  };
  const existing = await usable();
  if (existing) return result(dir, hash, true, existing);

  await mkdir(cacheDir, { recursive: true });
  const release = await acquireLock(join(cacheDir, `${id}.lock`), key.name);
  try {
    // Another process may have finished it between our look and taking the lock.
    const finished = await usable();
    if (finished) return result(dir, hash, true, finished);
    return await runLocked();
  } finally {
    await release();
  }

  async function runLocked(): Promise<StageResult> {
    if (await stat(dir).catch(() => undefined)) await rm(dir, { recursive: true, force: true });
    for (const name of await readdir(cacheDir)) {
      if (name.startsWith(`.tmp-${id}-`)) await rm(join(cacheDir, name), { recursive: true, force: true });
    }
    const outDir = join(cacheDir, `.tmp-${id}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(outDir);
    await mkdir(workDir, { recursive: true });

    const startedAt = new Date();
    const clock = await stageClock(join(workDir, STAGE_TIME_FILE));
    let meta: unknown;
    try {
      meta = await fn({ outDir, workDir });
    } catch (err) {
      await rm(outDir, { recursive: true, force: true });
      throw err;
    } finally {
      await clock.stop();
    }
    const { wallMs, runs } = clock.total();

    const files: Record<string, FileRecord> = {};
    for (const file of await listFiles(outDir)) {
      if (file === 'done.json') throw new Error(`stage ${key.name} wrote its own done.json; that name is the cache's`);
      const path = join(outDir, file);
      await fsyncPath(path);
      files[file] = { sha256: await sha256File(path), bytes: (await stat(path)).size };
    }
    const done: DoneRecord = { stage: key.name, hash, key, startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), wallMs, runs, files, meta: meta ?? null };
    await writeFileAtomic(join(outDir, 'done.json'), JSON.stringify(done, null, 1));
    try {
      await rename(outDir, dir);
    } catch (err) {
      // Another process finished the same stage first: its result is as good as ours.
      const code = (err as NodeJS.ErrnoException).code;
      const theirs = code === 'ENOTEMPTY' || code === 'EEXIST' ? await readDone(dir, hash) : undefined;
      await rm(outDir, { recursive: true, force: true });
      if (!theirs) throw err;
      return result(dir, hash, true, theirs);
    }
    await fsyncPath(cacheDir);
    await rm(workDir, { recursive: true, force: true });
    return result(dir, hash, false, done);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<id>.lock` (exclusive create). A lock left by a process that no longer exists on
 * this host (killed, crashed) is stale and taken over; one held by a live process is an
 * error, since two runs of a stage would share its checkpoint directory.
 */
async function acquireLock(path: string, stage: string): Promise<() => Promise<void>> {
  const me = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, 'wx');
      try {
        await handle.writeFile(JSON.stringify(me));
      } finally {
        await handle.close();
      }
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    let holder: { pid?: number; host?: string; since?: string } = {};
    try {
      holder = JSON.parse(await readFile(path, 'utf8'));
    } catch {
      // Unreadable or half-written: its writer died between create and write.
    }
    const live = typeof holder.pid === 'number' && holder.pid !== process.pid && (holder.host !== me.host || processAlive(holder.pid));
    if (live) {
      throw new Error(`stage ${stage} is being run by process ${holder.pid} on ${holder.host} since ${holder.since} (lock ${path}); wait for it, or delete the lock if that process is gone`);
    }
    await rm(path, { force: true });
  }
}

async function checksumsMatch(dir: string, done: DoneRecord): Promise<boolean> {
  for (const [file, rec] of Object.entries(done.files)) {
    if ((await sha256File(join(dir, file))) !== rec.sha256) return false;
  }
  return true;
}
