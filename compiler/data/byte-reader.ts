/**
 * Streams a file's bytes, gunzipping on the fly when the file starts with the gzip magic,
 * so a loader can read a small header and then copy the body straight into its final
 * array: one copy, no whole-file buffer.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DataError } from './errors.ts';

/** True when the file starts with the two gzip magic bytes 1f 8b. */
export async function isGzipFile(path: string): Promise<boolean> {
  const handle = await openOrThrow(path);
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0).catch((err: NodeJS.ErrnoException) => {
      throw new DataError(path, err.code === 'EISDIR' ? 'is a folder, expected a file' : `cannot read (${err.code ?? err.message})`);
    });
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

async function openOrThrow(path: string) {
  try {
    return await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataError(path, code === 'ENOENT' ? 'file not found' : `cannot open (${code ?? String(err)})`);
  }
}

export class ByteReader {
  /** Bytes handed out so far (decompressed bytes for a .gz file). */
  position = 0;
  private pending: Buffer | undefined;
  private pendingOffset = 0;

  private constructor(
    readonly path: string,
    readonly gzipped: boolean,
    private readonly stream: NodeJS.ReadableStream & { destroy(): void },
    private readonly chunks: AsyncIterator<Buffer>,
  ) {}

  static async open(path: string): Promise<ByteReader> {
    const gzipped = await isGzipFile(path);
    const file = createReadStream(path, { highWaterMark: 1 << 20 });
    // pipeline() forwards a read error from the file into the gunzip stream we iterate.
    const stream = gzipped ? pipeline(file, createGunzip({ chunkSize: 1 << 20 }), () => {}) : file;
    return new ByteReader(path, gzipped, stream, stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  }

  private async nextChunk(): Promise<Buffer | undefined> {
    try {
      const { value, done } = await this.chunks.next();
      return done ? undefined : value;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'Z_BUF_ERROR' || code === 'Z_DATA_ERROR') {
        throw new DataError(this.path, `gzip data is truncated or corrupt (${(err as Error).message}) after ${this.position} decompressed bytes`);
      }
      throw new DataError(this.path, `read failed: ${(err as Error).message}`);
    }
  }

  /** Copies bytes into `target[offset..]` until it is full or the file ends; returns the count copied. */
  async fill(target: Uint8Array, offset = 0): Promise<number> {
    let at = offset;
    while (at < target.length) {
      if (!this.pending || this.pendingOffset >= this.pending.length) {
        this.pending = await this.nextChunk();
        this.pendingOffset = 0;
        if (!this.pending) break;
      }
      const n = Math.min(target.length - at, this.pending.length - this.pendingOffset);
      target.set(this.pending.subarray(this.pendingOffset, this.pendingOffset + n), at);
      this.pendingOffset += n;
      at += n;
    }
    this.position += at - offset;
    return at - offset;
  }

  /** Reads exactly `n` bytes, or fewer only when the file ends first. */
  async read(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    const got = await this.fill(out);
    return got === n ? out : out.subarray(0, got);
  }

  /** Counts (and discards) the bytes left, to report trailing garbage. */
  async countRemaining(): Promise<number> {
    let n = this.pending ? this.pending.length - this.pendingOffset : 0;
    this.pending = undefined;
    for (let chunk = await this.nextChunk(); chunk; chunk = await this.nextChunk()) n += chunk.length;
    return n;
  }

  async close(): Promise<void> {
    this.stream.destroy();
  }
}
