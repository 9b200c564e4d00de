/**
 * Atomic file output: bytes go to a temp file in the destination's folder, are fsynced,
 * then renamed over the destination, so a reader (or a crash) never sees half a file.
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicFile {
  readonly tempPath: string;
  write(chunk: Uint8Array): Promise<void>;
  /** fsync, rename over the destination, fsync the folder. */
  commit(): Promise<void>;
  /** Close and delete the temp file; safe to call after a failed write. */
  abort(): Promise<void>;
}

export async function createAtomicFile(path: string): Promise<AtomicFile> {
  const tempPath = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  const handle: FileHandle = await open(tempPath, 'wx');
  let closed = false;
  const close = async () => {
    if (!closed) { closed = true; await handle.close(); }
  };
  return {
    tempPath,
    async write(chunk) {
      for (let at = 0; at < chunk.length;) at += (await handle.write(chunk, at, chunk.length - at)).bytesWritten;
    },
    async commit() {
      await handle.sync();
      await close();
      await rename(tempPath, path);
      await syncFolder(dirname(path));
    },
    async abort() {
      await close().catch(() => {});
      await unlink(tempPath).catch(() => {});
    },
  };
}

export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const file = await createAtomicFile(path);
  try {
    await file.write(bytes);
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err;
  }
}

/** Makes the rename itself durable; some file systems refuse to fsync a folder, which is fine. */
async function syncFolder(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try { await handle.sync(); } finally { await handle.close(); }
  } catch { /* best effort */ }
}
