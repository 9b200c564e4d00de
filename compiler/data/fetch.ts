/**
 * `facet data fetch`: downloads a data set from its canonical source, checks the pinned
 * checksum, unpacks it if needed and writes every file atomically.
 *
 * Fashion-MNIST's checksums are sha256 of the *decompressed* IDX files. The .gz files are
 * not byte-stable: Debian's dataset-fashion-mnist recompressed them (md5 differs from the
 * table in upstream's README) while the IDX content is identical, so hashing the content
 * accepts any honest mirror and rejects any corrupt one. CIFAR: md5 of the tarball, as
 * published on cs.toronto.edu.
 *
 * Downloads use node:http(s), not fetch(): fetch() silently decodes a Content-Encoding
 * (servers often label .gz/.tar.gz files that way), which would change the bytes that
 * the tarball md5 is pinned on.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { createAtomicFile } from './atomic.ts';
import { ByteReader } from './byte-reader.ts';
import { DataError } from './errors.ts';
import { defaultDataDir } from './registry.ts';
import { extractTar } from './tar.ts';

export type FetchableDataset = 'fashion-mnist' | 'cifar10' | 'cifar100';
export const FETCHABLE: readonly FetchableDataset[] = ['fashion-mnist', 'cifar10', 'cifar100'];

export interface Checksum {
  algorithm: 'md5' | 'sha256';
  hex: string;
  /** Hash the downloaded bytes, or their gunzipped content. */
  of: 'file' | 'gunzipped';
}

export interface RemoteFile {
  /** Path relative to the base URL; also the local file name unless extracted. */
  name: string;
  checksum: Checksum;
  /** For a tarball: archive entry name → local file name and its exact size (-1: any). */
  extract?: Record<string, { file: string; bytes: number }>;
}

export interface DatasetSource {
  name: FetchableDataset;
  /** Tried in order; a host that fails moves on to the next. */
  baseUrls: string[];
  files: RemoteFile[];
}

const FASHION_MNIST_CONTENT_SHA256: Record<string, string> = {
  'train-images-idx3-ubyte.gz': 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
  'train-labels-idx1-ubyte.gz': 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
  't10k-images-idx3-ubyte.gz': '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
  't10k-labels-idx1-ubyte.gz': '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
};

const cifarBatch = (file: string, records: number, recordBytes: number) => ({ file, bytes: records * recordBytes });

export const DATASET_SOURCES: Record<FetchableDataset, DatasetSource> = {
  'fashion-mnist': {
    name: 'fashion-mnist',
    baseUrls: [
      'https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/',
      'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
    ],
    files: Object.entries(FASHION_MNIST_CONTENT_SHA256).map(([name, hex]) => ({ name, checksum: { algorithm: 'sha256', hex, of: 'gunzipped' } })),
  },
  cifar10: {
    name: 'cifar10',
    baseUrls: ['https://www.cs.toronto.edu/~kriz/'],
    files: [{
      name: 'cifar-10-binary.tar.gz',
      checksum: { algorithm: 'md5', hex: 'c32a1d4ab5d03f1284b67883e8d87530', of: 'file' },
      extract: Object.fromEntries([
        ...[1, 2, 3, 4, 5].map((b) => [`cifar-10-batches-bin/data_batch_${b}.bin`, cifarBatch(`data_batch_${b}.bin`, 10000, 3073)]),
        ['cifar-10-batches-bin/test_batch.bin', cifarBatch('test_batch.bin', 10000, 3073)],
        ['cifar-10-batches-bin/batches.meta.txt', { file: 'batches.meta.txt', bytes: -1 }],
      ]),
    }],
  },
  cifar100: {
    name: 'cifar100',
    baseUrls: ['https://www.cs.toronto.edu/~kriz/'],
    files: [{
      name: 'cifar-100-binary.tar.gz',
      checksum: { algorithm: 'md5', hex: '03b5dce01913d631647c71ecec9e9cb8', of: 'file' },
      extract: {
        'cifar-100-binary/train.bin': cifarBatch('train.bin', 50000, 3074),
        'cifar-100-binary/test.bin': cifarBatch('test.bin', 10000, 3074),
        'cifar-100-binary/fine_label_names.txt': { file: 'fine_label_names.txt', bytes: -1 },
        'cifar-100-binary/coarse_label_names.txt': { file: 'coarse_label_names.txt', bytes: -1 },
      },
    }],
  },
};

/** A fetch that could not be completed: network, HTTP status or checksum. Printed without a stack. */
export class FetchError extends Error {
  override name = 'FetchError';
}

const OFFLINE_HINT = 'Fashion-MNIST is also available offline via apt-get install dataset-fashion-mnist';

export interface FetchOptions {
  /** Destination folder; default $FACET_DATA_DIR/<name> or ~/.cache/facet/datasets/<name>. */
  dir?: string;
  /** Replaces the source's base URLs (mirrors, tests). */
  baseUrl?: string;
  /** Where progress goes; a TTY gets a live line, anything else a line per 10%. */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Abort a download that receives nothing for this long. */
  idleTimeoutMs?: number;
  /** Override the pinned source (tests use a fixture archive with its own checksum). */
  source?: DatasetSource;
}

export interface FetchResult {
  dir: string;
  /** Local files written or already present. */
  files: string[];
  downloaded: string[];
  skipped: string[];
}

export async function fetchDataset(name: FetchableDataset, options: FetchOptions = {}): Promise<FetchResult> {
  const source = options.source ?? DATASET_SOURCES[name];
  if (!source) throw new FetchError(`cannot fetch "${name}": expected one of ${FETCHABLE.join(', ')}`);
  const dir = options.dir ?? defaultDataDir(name);
  const out = options.out ?? process.stderr;
  const baseUrls = options.baseUrl ? [options.baseUrl] : source.baseUrls;
  await mkdir(dir, { recursive: true });
  const result: FetchResult = { dir, files: [], downloaded: [], skipped: [] };

  for (const remote of source.files) {
    const localFiles = remote.extract ? Object.values(remote.extract).map((e) => e.file) : [remote.name];
    if (await alreadyPresent(dir, remote)) {
      out.write(`${remote.name}: already present in ${dir}, skipped\n`);
      result.skipped.push(remote.name);
      result.files.push(...localFiles);
      continue;
    }
    const target = join(dir, remote.name);
    const url = await download(baseUrls, remote, target, out, options.idleTimeoutMs ?? 60_000);
    if (remote.extract) {
      try {
        await extractArchive(target, dir, remote.extract);
      } finally {
        await unlink(target).catch(() => {});
      }
    }
    out.write(`${remote.name}: ok (${url})\n`);
    result.downloaded.push(remote.name);
    result.files.push(...localFiles);
  }
  return result;
}

async function alreadyPresent(dir: string, remote: RemoteFile): Promise<boolean> {
  if (remote.extract) {
    return Object.values(remote.extract).every(({ file, bytes }) => {
      const path = join(dir, file);
      return existsSync(path) && (bytes < 0 || statSync(path).size === bytes);
    });
  }
  const path = join(dir, remote.name);
  if (!existsSync(path)) return false;
  try {
    return (await hashFile(path, remote.checksum)) === remote.checksum.hex;
  } catch {
    return false; // unreadable or corrupt: fetch it again
  }
}

/** Hashes a file, or its gunzipped content, streaming. */
async function hashFile(path: string, checksum: Checksum): Promise<string> {
  const hash = createHash(checksum.algorithm);
  if (checksum.of === 'file') {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }
  const reader = await ByteReader.open(path);
  try {
    if (!reader.gzipped) throw new DataError(path, 'expected a gzip file');
    const buffer = new Uint8Array(1 << 20);
    for (let n = await reader.fill(buffer); n > 0; n = await reader.fill(buffer)) hash.update(buffer.subarray(0, n));
  } finally {
    await reader.close();
  }
  return hash.digest('hex');
}

function joinUrl(base: string, name: string): string {
  return base.endsWith('/') ? base + name : `${base}/${name}`;
}

/** Why a host could not be used, in one line (no stack). */
function describeNetworkError(err: unknown, signal: AbortSignal): string {
  // After our idle abort the socket error is a bare "aborted"; our reason says why.
  if (signal.aborted) return (signal.reason as Error).message;
  return (err as Error)?.message || String(err);
}

/** GET with redirects followed; the body arrives exactly as the server stored it. */
function get(url: string, signal: AbortSignal, redirectsLeft = 5): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = (url.startsWith('https:') ? httpsGet : httpGet)(url, { signal, headers: { 'user-agent': 'facet-data-fetch' } }, (response) => {
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (status >= 300 && status < 400 && location) {
        response.resume();
        if (redirectsLeft === 0) reject(new Error(`too many redirects (last: ${url})`));
        else get(new URL(location, url).toString(), signal, redirectsLeft - 1).then(resolve, reject);
        return;
      }
      resolve(response);
    });
    request.on('error', reject);
  });
}

/** Downloads to `target` (atomically) from the first base URL that works; returns the URL used. */
async function download(baseUrls: string[], remote: RemoteFile, target: string, out: FetchOptions['out'] & {}, idleTimeoutMs: number): Promise<string> {
  const failures: string[] = [];
  for (const base of baseUrls) {
    const url = joinUrl(base, remote.name);
    const host = new URL(url).host;
    const controller = new AbortController();
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(new Error(`no data for ${idleTimeoutMs / 1000} s`)), idleTimeoutMs);
    };
    arm();
    let response: IncomingMessage;
    try {
      response = await get(url, controller.signal);
    } catch (err) {
      clearTimeout(idle);
      failures.push(`could not reach ${host}: ${describeNetworkError(err, controller.signal)}`);
      continue;
    }
    const status = response.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      clearTimeout(idle);
      response.resume();
      failures.push(`GET ${url} answered ${status} ${response.statusMessage ?? ''}`.trim());
      continue;
    }
    const total = Number(response.headers['content-length']) || undefined;
    const progress = createProgress(remote.name, total, out);
    const file = await createAtomicFile(target);
    const hash = remote.checksum.of === 'file' ? createHash(remote.checksum.algorithm) : undefined;
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        arm();
        hash?.update(chunk);
        await file.write(chunk);
        progress.advance(chunk.length);
      }
      clearTimeout(idle);
      progress.done();
      if (total !== undefined && progress.received !== total) {
        throw new FetchError(`${url}: connection closed after ${progress.received} of ${total} bytes`);
      }
      const actual = hash ? hash.digest('hex') : await hashFile(file.tempPath, remote.checksum).catch((err: Error) => {
        throw new FetchError(`${url}: the download is not a valid gzip file (${err.message})`);
      });
      if (actual !== remote.checksum.hex) {
        const what = remote.checksum.of === 'gunzipped' ? `${remote.checksum.algorithm} of the decompressed content` : remote.checksum.algorithm;
        throw new FetchError(`checksum mismatch for ${url}: expected ${what} ${remote.checksum.hex}, got ${actual}. The download is corrupt or the server sent a different file; nothing was kept.`);
      }
      await file.commit();
      return url;
    } catch (err) {
      clearTimeout(idle);
      response.destroy();
      await file.abort();
      if (err instanceof FetchError) throw err;
      failures.push(`download from ${host} failed: ${describeNetworkError(err, controller.signal)} (after ${progress.received}${total ? ` of ${total}` : ''} bytes)`);
    }
  }
  throw new FetchError(`${failures.join('; ')}; ${OFFLINE_HINT}`);
}

async function extractArchive(archive: string, dir: string, entries: NonNullable<RemoteFile['extract']>): Promise<void> {
  const extracted = await extractTar(archive, dir, (name) => entries[name.replace(/^\.\//, '')]?.file);
  const names = new Map([...extracted].map(([name, size]) => [name.replace(/^\.\//, ''), size]));
  for (const [entry, { file, bytes }] of Object.entries(entries)) {
    const size = names.get(entry);
    if (size === undefined) throw new DataError(archive, `archive has no entry "${entry}"`);
    if (bytes >= 0 && size !== bytes) {
      await unlink(join(dir, file)).catch(() => {});
      throw new DataError(archive, `entry "${entry}" is ${size} bytes, expected ${bytes}`);
    }
  }
}

interface Progress { received: number; advance(n: number): void; done(): void }

/** A live line on a terminal; on a pipe or log, one line per 10% (or per 10 MB without a length). */
export function createProgress(label: string, total: number | undefined, out: NodeJS.WritableStream & { isTTY?: boolean }): Progress {
  const started = performance.now();
  const mb = (n: number) => (n / 1e6).toFixed(1);
  let lastDraw = 0;
  let lastStep = 0;
  const line = (received: number) => {
    const seconds = Math.max((performance.now() - started) / 1000, 1e-3);
    const rate = `${mb(received / seconds)} MB/s`;
    return total ? `${label}: ${mb(received)}/${mb(total)} MB ${Math.floor((100 * received) / total)}% ${rate}` : `${label}: ${mb(received)} MB ${rate}`;
  };
  const progress: Progress = {
    received: 0,
    advance(n) {
      progress.received += n;
      const now = performance.now();
      if (out.isTTY) {
        if (now - lastDraw > 100) { lastDraw = now; out.write(`\r${line(progress.received)}\x1b[K`); }
        return;
      }
      const step = total ? Math.floor((10 * progress.received) / total) : Math.floor(progress.received / 10e6);
      if (step > lastStep) { lastStep = step; out.write(`${line(progress.received)}\n`); }
    },
    done() {
      if (out.isTTY) out.write(`\r${line(progress.received)}\x1b[K\n`);
      else if (!total || lastStep < 10) out.write(`${line(progress.received)}\n`);
    },
  };
  return progress;
}
