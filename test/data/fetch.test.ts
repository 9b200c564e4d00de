import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { command } from '../../compiler/cli/commands/data.ts';
import { createProgress, DATASET_SOURCES, type DatasetSource, fetchDataset, FetchError } from '../../compiler/data/fetch.ts';
import { DEBIAN_FASHION_MNIST_DIR, loadDataset } from '../../compiler/data/registry.ts';
import { cifarBatch, cifarPixel, FIXTURES, serveFiles, tempDir, textSink } from './helpers.ts';

const dir = tempDir();
const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest('hex');
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A small CIFAR-10 tarball laid out like cs.toronto.edu's, made by GNU tar. */
function cifar10Tarball(): Uint8Array {
  const root = join(dir, 'cifar-src');
  const inner = join(root, 'cifar-10-batches-bin');
  mkdirSync(inner, { recursive: true });
  for (let b = 1; b <= 5; b++) writeFileSync(join(inner, `data_batch_${b}.bin`), cifarBatch('cifar10', [b - 1, b], 2 * (b - 1)));
  writeFileSync(join(inner, 'test_batch.bin'), cifarBatch('cifar10', [9, 8, 7]));
  writeFileSync(join(inner, 'batches.meta.txt'), 'airplane\nautomobile\n');
  writeFileSync(join(inner, 'readme.html'), '<p>not extracted</p>');
  const archive = join(dir, 'cifar-10-binary.tar.gz');
  execFileSync('tar', ['-czf', archive, '-C', root, 'cifar-10-batches-bin']);
  return readFileSync(archive);
}

const tarball = cifar10Tarball();
const fmImages = readFileSync(join(FIXTURES, 'fashion-mnist-100', 't10k-images-idx3-ubyte.gz'));
const fmLabels = readFileSync(join(FIXTURES, 'fashion-mnist-100', 't10k-labels-idx1-ubyte.gz'));
const server = await serveFiles(new Map([
  ['/mirror/cifar-10-binary.tar.gz', tarball],
  ['/fm/t10k-images-idx3-ubyte.gz', fmImages],
  ['/fm/t10k-labels-idx1-ubyte.gz', fmLabels],
  ['/fm/corrupt.gz', fmImages.subarray(0, 1000)],
  ['/encoded/t10k-images-idx3-ubyte.gz', fmImages],
  ['/encoded/cifar-10-binary.tar.gz', tarball],
]));

/** The real CIFAR-10 source, with this fixture's md5 and batch sizes in place of the real ones. */
function fixtureCifarSource(): DatasetSource {
  const real = DATASET_SOURCES.cifar10.files[0]!;
  const extract = Object.fromEntries(Object.entries(real.extract!).map(([entry, { file, bytes }]) => [
    entry, { file, bytes: bytes < 0 ? -1 : file === 'test_batch.bin' ? 3 * 3073 : 2 * 3073 },
  ]));
  return { ...DATASET_SOURCES.cifar10, files: [{ ...real, checksum: { ...real.checksum, hex: md5(tarball) }, extract }] };
}

describe('facet data fetch', () => {
  it('downloads, checks md5, extracts only the batch files, and the registry loads them', async () => {
    const dest = join(dir, 'cifar10');
    const out = textSink();
    const result = await fetchDataset('cifar10', { dir: dest, baseUrl: `${server.url}mirror/`, out, source: fixtureCifarSource() });
    expect(result.downloaded).toEqual(['cifar-10-binary.tar.gz']);
    // The tarball is removed after extraction; readme.html was not picked; no temp files.
    expect(readdirSync(dest).sort()).toEqual(['batches.meta.txt', 'data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin']);
    expect(out.text()).toMatch(/cifar-10-binary\.tar\.gz: [\d.]+\/[\d.]+ MB 100%/);
    const train = await loadDataset({ name: 'cifar10', split: 'train', dir: dest });
    expect(Array.from(train.labels)).toEqual([0, 1, 1, 2, 2, 3, 3, 4, 4, 5]);
    expect(train.images[7 * 3072 + 1]).toBe(cifarPixel(7, 1, 0, 0));
    // A second fetch finds the files and downloads nothing.
    const before = server.requests.length;
    const again = await fetchDataset('cifar10', { dir: dest, baseUrl: `${server.url}mirror/`, out: textSink(), source: fixtureCifarSource() });
    expect(again.skipped).toEqual(['cifar-10-binary.tar.gz']);
    expect(server.requests.length).toBe(before);
  });

  it('follows redirects', async () => {
    const dest = join(dir, 'cifar10-moved');
    const result = await fetchDataset('cifar10', { dir: dest, baseUrl: `${server.url}moved/`, out: textSink(), source: fixtureCifarSource() });
    expect(result.downloaded).toEqual(['cifar-10-binary.tar.gz']);
    expect(server.requests.slice(-2)).toEqual(['/moved/cifar-10-binary.tar.gz', '/mirror/cifar-10-binary.tar.gz']);
  });

  it('rejects a download whose md5 differs from the pinned one, keeping nothing (through the CLI)', async () => {
    const dest = join(dir, 'cifar10-mismatch');
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const err = await command.run(['fetch', 'cifar10', '--dir', dest, '--base-url', `${server.url}mirror`]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FetchError);
      expect((err as Error).message).toBe(
        `checksum mismatch for ${server.url}mirror/cifar-10-binary.tar.gz: expected md5 c32a1d4ab5d03f1284b67883e8d87530, got ${md5(tarball)}. ` +
        'The download is corrupt or the server sent a different file; nothing was kept.',
      );
    } finally {
      stderr.mockRestore();
    }
    expect(readdirSync(dest)).toEqual([]);
  });

  it('checks gzipped files by the sha256 of their content', async () => {
    const source: DatasetSource = {
      name: 'fashion-mnist',
      baseUrls: ['http://unused.invalid/'],
      files: [
        { name: 't10k-images-idx3-ubyte.gz', checksum: { algorithm: 'sha256', hex: sha256(execFileSync('gzip', ['-dc'], { input: fmImages })), of: 'gunzipped' } },
        { name: 't10k-labels-idx1-ubyte.gz', checksum: { algorithm: 'sha256', hex: 'f'.repeat(64), of: 'gunzipped' } },
      ],
    };
    const dest = join(dir, 'fm-content');
    const err = await fetchDataset('fashion-mnist', { dir: dest, baseUrl: `${server.url}fm`, out: textSink(), source }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^checksum mismatch for .*t10k-labels-idx1-ubyte\.gz: expected sha256 of the decompressed content f{64}, got [0-9a-f]{64}\./);
    // The first file passed and stays; the failing one left nothing behind.
    expect(readdirSync(dest)).toEqual(['t10k-images-idx3-ubyte.gz']);
    expect(readFileSync(join(dest, 't10k-images-idx3-ubyte.gz'))).toEqual(fmImages);
  });

  it('keeps the bytes as stored when the server labels a .gz Content-Encoding: gzip', async () => {
    const source: DatasetSource = {
      name: 'fashion-mnist', baseUrls: [],
      files: [{ name: 't10k-images-idx3-ubyte.gz', checksum: { algorithm: 'sha256', hex: sha256(execFileSync('gzip', ['-dc'], { input: fmImages })), of: 'gunzipped' } }],
    };
    const dest = join(dir, 'fm-encoded');
    await fetchDataset('fashion-mnist', { dir: dest, baseUrl: `${server.url}encoded/`, out: textSink(), source });
    expect(readFileSync(join(dest, 't10k-images-idx3-ubyte.gz'))).toEqual(fmImages);
    // And a tarball pinned by md5 of the file is checked on the stored bytes too.
    const cifar = fixtureCifarSource();
    await fetchDataset('cifar10', { dir: join(dir, 'cifar-encoded'), baseUrl: `${server.url}encoded/`, out: textSink(), source: cifar });
  });

  it('reports a download that is not valid gzip', async () => {
    const source: DatasetSource = {
      name: 'fashion-mnist', baseUrls: [],
      files: [{ name: 'corrupt.gz', checksum: { algorithm: 'sha256', hex: '0'.repeat(64), of: 'gunzipped' } }],
    };
    await expect(fetchDataset('fashion-mnist', { dir: join(dir, 'fm-bad'), baseUrl: `${server.url}fm/`, out: textSink(), source }))
      .rejects.toThrow(/corrupt\.gz: the download is not a valid gzip file \(.*gzip data is truncated or corrupt/);
  });

  it('fails clearly on 404 and on an unreachable host, with the offline hint', async () => {
    await expect(fetchDataset('cifar100', { dir: join(dir, 'c100'), baseUrl: server.url, out: textSink() }))
      .rejects.toThrow(`GET ${server.url}cifar-100-binary.tar.gz answered 404 Not Found; Fashion-MNIST is also available offline via apt-get install dataset-fashion-mnist`);
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const err = await fetchDataset('fashion-mnist', { dir: join(dir, 'fm-off'), baseUrl: `http://127.0.0.1:${port}/`, out: textSink() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FetchError);
    expect((err as Error).message).toMatch(new RegExp(`^could not reach 127\\.0\\.0\\.1:${port}: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}; Fashion-MNIST is also available offline via apt-get install dataset-fashion-mnist$`));
  });

  it('gives up on a stalled or cut-off transfer instead of hanging or keeping a partial file', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const flaky = createServer((req, res) => {
      res.writeHead(200, { 'content-length': 100_000 });
      res.write(new Uint8Array(1000));
      // /stall keeps the connection open and silent; /cut closes it mid-body.
      if (req.url?.startsWith('/cut')) setTimeout(() => res.socket?.destroy(), 20);
    });
    flaky.on('connection', (s) => sockets.add(s));
    await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
    const { port } = flaky.address() as { port: number };
    try {
      const stalled = join(dir, 'stalled');
      await expect(fetchDataset('cifar10', { dir: stalled, baseUrl: `http://127.0.0.1:${port}/stall/`, out: textSink(), idleTimeoutMs: 1000 }))
        .rejects.toThrow(new RegExp(`^download from 127\\.0\\.0\\.1:${port} failed: no data for 1 s \\(after \\d+ of 100000 bytes\\); Fashion-MNIST is also available offline`));
      expect(readdirSync(stalled)).toEqual([]);
      const cut = join(dir, 'cut');
      await expect(fetchDataset('cifar10', { dir: cut, baseUrl: `http://127.0.0.1:${port}/cut/`, out: textSink() }))
        .rejects.toThrow(new RegExp(`^download from 127\\.0\\.0\\.1:${port} failed: .* \\(after \\d+ of 100000 bytes\\); Fashion`));
      expect(readdirSync(cut)).toEqual([]);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => flaky.close(resolve));
    }
  });

  it('draws one live progress line on a terminal', () => {
    const sink = Object.assign(textSink(), { isTTY: true });
    const progress = createProgress('x.bin', 2_000_000, sink as never);
    progress.advance(1_000_000);
    progress.done();
    const text = sink.text();
    expect(text.startsWith('\r')).toBe(true);
    expect(text).toMatch(/\rx\.bin: 1\.0\/2\.0 MB 50% [\d.]+ MB\/s\x1b\[K\n$/);
    expect(text.split('\n')).toHaveLength(2);
  });

  it('refuses bad arguments with usage errors', async () => {
    await expect(command.run(['fetch', 'mnist'])).rejects.toThrow(/cannot fetch "mnist": expected one of fashion-mnist, cifar10, cifar100 \(MNIST: put its IDX files/);
    await expect(command.run(['fetch'])).rejects.toThrow(/fetch needs exactly one data set/);
    await expect(command.run(['fetch', 'cifar10', '--base-url', 'ftp://x'])).rejects.toThrow(/--base-url must be an http/);
    await expect(command.run(['fetch', 'cifar10', '--bogus'])).rejects.toThrow(/Unknown option '--bogus'/);
    await expect(command.run(['frobnicate'])).rejects.toThrow(/unknown subcommand "frobnicate"/);
  });

  it.skipIf(!existsSync(DEBIAN_FASHION_MNIST_DIR))(
    `fetches Fashion-MNIST against the pinned sha256s, served from ${DEBIAN_FASHION_MNIST_DIR}${existsSync(DEBIAN_FASHION_MNIST_DIR) ? '' : ' (skipped: not installed; apt-get install dataset-fashion-mnist)'}`,
    async () => {
      const files = new Map(readdirSync(DEBIAN_FASHION_MNIST_DIR).map((f) => [`/debian/${f}`, readFileSync(join(DEBIAN_FASHION_MNIST_DIR, f))]));
      const debian = await serveFiles(files);
      const dest = join(dir, 'fashion-mnist');
      const log = vi.spyOn(console, 'log').mockImplementation(() => {});
      const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      try {
        await command.run(['fetch', 'fashion-mnist', '--dir', dest, '--base-url', `${debian.url}debian/`]);
        expect(log).toHaveBeenCalledWith(`fashion-mnist: 4 files in ${dest} (4 downloaded, 0 already present)`);
      } finally {
        log.mockRestore();
        stderr.mockRestore();
      }
      expect(readdirSync(dest).sort()).toEqual(['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz', 'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz']);
      const test = await loadDataset({ name: 'fashion-mnist', split: 'test', dir: dest });
      expect(test.count).toBe(10000);
    },
  );
});
