/** Temp folders and synthetic data files for the data-set tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll } from 'vitest';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'data');

/** A fresh temp folder, removed when the test file finishes. */
export function tempDir(prefix = 'facet-data-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A pixel value that differs by record, channel, row and column, so any reordering shows. */
export function cifarPixel(record: number, channel: number, y: number, x: number): number {
  return (record * 7 + channel * 85 + y * 3 + x * 5) & 0xff;
}

/** CIFAR binary records (planar CHW); CIFAR-100 records get coarse label 99 - fine. */
export function cifarBatch(variant: 'cifar10' | 'cifar100', labels: number[], firstRecord = 0): Uint8Array {
  const head = variant === 'cifar10' ? 1 : 2;
  const size = head + 3072;
  const out = new Uint8Array(labels.length * size);
  labels.forEach((label, r) => {
    const base = r * size;
    if (variant === 'cifar10') out[base] = label;
    else { out[base] = 99 - label; out[base + 1] = label; }
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 32; y++)
        for (let x = 0; x < 32; x++) out[base + head + c * 1024 + y * 32 + x] = cifarPixel(firstRecord + r, c, y, x);
  });
  return out;
}

/** Serves `files` (URL path → bytes) on 127.0.0.1, /moved/* redirecting to /mirror/*; closed when the test file finishes. */
export async function serveFiles(files: Map<string, Uint8Array>): Promise<{ url: string; requests: string[] }> {
  const { createServer } = await import('node:http');
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(path);
    if (path.startsWith('/moved/')) {
      res.writeHead(302, { location: path.replace('/moved/', '/mirror/') }).end();
      return;
    }
    const body = files.get(path);
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    // Paths under /encoded/ mimic a server that labels .gz files Content-Encoding: gzip.
    const encoding = path.startsWith('/encoded/') ? { 'content-encoding': 'gzip' } : {};
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, ...encoding });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/`, requests };
}

/** Collects progress output like a non-terminal stream. */
export function textSink(): NodeJS.WritableStream & { isTTY: false; text(): string } {
  let text = '';
  const sink = new Writable({ write(chunk, _enc, done) { text += String(chunk); done(); } });
  return Object.assign(sink, { isTTY: false as const, text: () => text });
}
