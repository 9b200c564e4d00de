/**
 * The tiny compile (tiny.ts) as files, so tests can drive the real `facet compile` command:
 * its quadrant images as MNIST-style IDX files and its config as JSON pointing at them.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tinyConfig, tinyData } from './tiny.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;

/** An IDX file (big-endian magic, dimensions, then the bytes), gzipped as MNIST ships them. */
export function idxFile(magic: number, dims: number[], bytes: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return gzipSync(Buffer.concat([header, bytes]));
}

/** Writes tiny.ts's train and test splits into `dir` under MNIST's file names. */
export async function writeTinyDataset(dir: string): Promise<void> {
  const data = tinyData();
  for (const [prefix, split] of [['train', data.train], ['t10k', data.test]] as const) {
    await writeFile(join(dir, `${prefix}-images-idx3-ubyte.gz`), idxFile(0x803, [split.count, split.height, split.width], split.images));
    await writeFile(join(dir, `${prefix}-labels-idx1-ubyte.gz`), idxFile(0x801, [split.count], Uint8Array.from(split.labels)));
  }
}

/** tiny.ts's config as JSON whose data set is read from `dataDir`; `edit` may change it first. */
export async function writeTinyConfig(file: string, dataDir: string, edit: (json: Record<string, any>) => void = () => {}): Promise<string> {
  const json = JSON.parse(JSON.stringify(tinyConfig())) as Record<string, any>;
  json.dataset.dir = dataDir;
  edit(json);
  await writeFile(file, JSON.stringify(json, null, 1));
  return file;
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** RLIMIT_FSIZE in 1 KiB blocks (`ulimit -f`): a write past it fails with EFBIG, as on a full disk. */
  fileSizeLimitKiB?: number;
  /** Called with the child as soon as it starts (e.g. to kill it at a chosen point). */
  onSpawn?: (child: ReturnType<typeof spawn>) => void;
}

/** Runs `facet <args>` (compiler/cli/main.ts) in a child process from the repository root. */
export function runFacet(args: string[], options: CliOptions = {}): Promise<CliRun> {
  const node = [process.execPath, '--import', 'tsx', join(ROOT, 'compiler/cli/main.ts'), ...args];
  const child = options.fileSizeLimitKiB === undefined
    ? spawn(node[0]!, node.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('sh', ['-c', `ulimit -f ${options.fileSizeLimitKiB} && exec "$@"`, 'sh', ...node], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  options.onSpawn?.(child);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
