/**
 * Checkpoint container: a JSON header plus float32 blobs, written atomically.
 *
 * Layout (little-endian):
 *   0  magic   "FCKP"
 *   4  u32     format version (1)
 *   8  u32     header byte length H
 *   12 u32     CRC-32 of everything after this field (header + padding + blobs)
 *   16 H bytes UTF-8 JSON header {meta, tensors: [{name, shape, offset, length}]}
 *   …  zero padding to a multiple of 4
 *   …  float32 blobs; `offset` counts bytes from the start of the blob section
 *
 * The CRC catches a torn or corrupted file that still parses; readers name the file.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import type { HostTensor } from '../graph/ir.ts';

const MAGIC = 'FCKP';
export const CHECKPOINT_VERSION = 1;
const PREFIX_BYTES = 16;

export interface Checkpoint<Meta = unknown> {
  meta: Meta;
  tensors: Map<string, HostTensor>;
}

interface TensorEntry {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('checkpoint: this code assumes a little-endian machine');
}

export function encodeCheckpoint(checkpoint: Checkpoint): Uint8Array {
  const entries: TensorEntry[] = [];
  let blobBytes = 0;
  for (const [name, t] of checkpoint.tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) throw new Error(`checkpoint: tensor "${name}" has shape [${t.shape}] but ${t.data.length} values`);
    entries.push({ name, shape: t.shape, offset: blobBytes, length: t.data.length });
    blobBytes += t.data.length * 4;
  }
  const header = new TextEncoder().encode(JSON.stringify({ meta: checkpoint.meta, tensors: entries }));
  const blobStart = align4(PREFIX_BYTES + header.length);
  const out = new Uint8Array(blobStart + blobBytes);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(4, CHECKPOINT_VERSION, true);
  view.setUint32(8, header.length, true);
  out.set(header, PREFIX_BYTES);
  let i = 0;
  for (const t of checkpoint.tensors.values()) {
    const e = entries[i++]!;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), blobStart + e.offset);
  }
  view.setUint32(12, crc32(out.subarray(PREFIX_BYTES)), true);
  return out;
}

/** Parses a checkpoint; `source` (usually the path) names it in every error. */
export function decodeCheckpoint<Meta = unknown>(bytes: Uint8Array, source = 'checkpoint'): Checkpoint<Meta> {
  const fail = (why: string): never => {
    throw new Error(`${source}: not a valid Facet checkpoint: ${why}`);
  };
  if (bytes.length < PREFIX_BYTES) fail(`file is ${bytes.length} bytes, shorter than the ${PREFIX_BYTES}-byte prefix (truncated?)`);
  if (new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC) fail(`bad magic (expected "${MAGIC}")`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (version !== CHECKPOINT_VERSION) fail(`format version ${version}, this reader supports ${CHECKPOINT_VERSION}`);
  const headerBytes = view.getUint32(8, true);
  const blobStart = align4(PREFIX_BYTES + headerBytes);
  if (blobStart > bytes.length) fail(`header claims ${headerBytes} bytes but the file has ${bytes.length} (truncated)`);
  let parsed: { meta: Meta; tensors: TensorEntry[] };
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes)));
  } catch (err) {
    return fail(`unreadable header (${(err as Error).message})`);
  }
  if (!parsed || !Array.isArray(parsed.tensors)) fail('header has no tensor table');
  const blobBytes = parsed.tensors.reduce((end, e) => Math.max(end, e.offset + e.length * 4), 0);
  if (blobStart + blobBytes > bytes.length) {
    fail(`tensor data needs ${blobStart + blobBytes} bytes but the file has ${bytes.length} (truncated)`);
  }
  if (crc32(bytes.subarray(PREFIX_BYTES)) !== view.getUint32(12, true)) fail('checksum mismatch (file corrupted)');
  // Copy the blob section once so every tensor is 4-byte aligned and independent of `bytes`
  // (a Node Buffer's slice() is a view, hence the explicit copy).
  const blobs = new Uint8Array(blobBytes);
  blobs.set(bytes.subarray(blobStart, blobStart + blobBytes));
  const tensors = new Map<string, HostTensor>();
  for (const e of parsed.tensors) {
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (size !== e.length || e.offset % 4 !== 0) fail(`tensor "${e.name}" has an inconsistent table entry`);
    tensors.set(e.name, { shape: e.shape, data: new Float32Array(blobs.buffer, e.offset, e.length) });
  }
  return { meta: parsed.meta, tensors };
}

export function writeCheckpoint(path: string, checkpoint: Checkpoint): void {
  writeFileAtomic(path, encodeCheckpoint(checkpoint));
}

export function readCheckpoint<Meta = unknown>(path: string): Checkpoint<Meta> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`${path}: cannot read checkpoint (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return decodeCheckpoint<Meta>(bytes, path);
}

/**
 * Write-to-temp, fsync, rename, fsync the directory: a reader (or a crash at any point)
 * sees either the old file or the complete new one.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  try {
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch {
    // Some file systems refuse fsync on a directory; the rename itself is still atomic.
  }
}

const align4 = (n: number): number => (n + 3) & ~3;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
