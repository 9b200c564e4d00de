/**
 * A small streaming tar reader (ustar, with GNU long names and pax path records), enough
 * for the CIFAR tarballs. The archive may be gzipped; entries are streamed straight to
 * their destination files, never held whole in memory.
 */
import { join } from 'node:path';
import { createAtomicFile } from './atomic.ts';
import { ByteReader } from './byte-reader.ts';
import { DataError } from './errors.ts';

const BLOCK = 512;
const COPY_CHUNK = 1 << 20;

export interface TarHeader {
  name: string;
  size: number;
  /** '0' regular file, '5' directory, 'L' GNU long name, 'x'/'g' pax, others as found. */
  type: string;
}

function cString(block: Uint8Array, from: number, length: number): string {
  const field = block.subarray(from, from + length);
  const end = field.indexOf(0);
  return new TextDecoder().decode(end === -1 ? field : field.subarray(0, end));
}

function octal(block: Uint8Array, from: number, length: number): number {
  if (block[from]! & 0x80) return Number.NaN; // base-256 sizes are for files > 8 GB: not ours
  const text = cString(block, from, length).trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

/** Parses one header block, or undefined for an all-zero (end-of-archive) block. */
export function parseTarHeader(block: Uint8Array, archive: string, offset: number): TarHeader | undefined {
  if (block.every((b) => b === 0)) return undefined;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  const stored = octal(block, 148, 8);
  if (stored !== sum) throw new DataError(archive, `corrupt tar header at byte ${offset} (checksum ${stored}, computed ${sum})`);
  const size = octal(block, 124, 12);
  if (!Number.isSafeInteger(size) || size < 0) throw new DataError(archive, `unsupported tar entry size field at byte ${offset}`);
  let name = cString(block, 0, 100);
  if (cString(block, 257, 6) === 'ustar') {
    const prefix = cString(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const type = block[156] === 0 ? '0' : String.fromCharCode(block[156]!);
  return { name, size, type };
}

/** The `path=` record of a pax extended header, if any. */
function paxPath(body: Uint8Array): string | undefined {
  const text = new TextDecoder().decode(body);
  for (const line of text.split('\n')) {
    const match = /^\d+ path=(.*)$/.exec(line);
    if (match) return match[1];
  }
  return undefined;
}

/**
 * Extracts the regular files that `pick` maps to a destination name (a plain file name,
 * written atomically in `destDir`); everything else is skipped. Returns the archive names
 * extracted and their sizes.
 */
export async function extractTar(
  archive: string,
  destDir: string,
  pick: (entryName: string) => string | undefined,
): Promise<Map<string, number>> {
  const reader = await ByteReader.open(archive);
  const extracted = new Map<string, number>();
  const header = new Uint8Array(BLOCK);
  const buffer = new Uint8Array(COPY_CHUNK);
  let longName: string | undefined;
  try {
    for (;;) {
      const offset = reader.position;
      const got = await reader.fill(header);
      if (got === 0) break; // tolerate a missing end-of-archive marker
      if (got < BLOCK) throw new DataError(archive, `truncated tar: header at byte ${offset} has only ${got} bytes`);
      const entry = parseTarHeader(header, archive, offset);
      if (!entry) break;
      const padded = Math.ceil(entry.size / BLOCK) * BLOCK;
      const truncated = () => new DataError(archive, `truncated tar: entry "${entry.name}" needs ${entry.size} bytes, the archive ends first`);

      if (entry.type === 'L' || entry.type === 'x') {
        const body = await reader.read(padded);
        if (body.length < padded) throw truncated();
        longName = entry.type === 'L' ? cString(body, 0, entry.size) : paxPath(body.subarray(0, entry.size)) ?? longName;
        continue;
      }
      const name = longName ?? entry.name;
      longName = undefined;
      const dest = entry.type === '0' || entry.type === '7' ? pick(name) : undefined;
      if (dest !== undefined && (dest.includes('/') || dest.includes('\\') || dest === '' || dest.startsWith('.'))) {
        throw new Error(`tar destination must be a plain file name, got "${dest}"`);
      }
      const out = dest === undefined ? undefined : await createAtomicFile(join(destDir, dest));
      try {
        for (let left = padded; left > 0;) {
          const want = Math.min(left, COPY_CHUNK);
          const n = await reader.fill(buffer.subarray(0, want));
          if (n < want) throw truncated();
          const data = padded - left + n <= entry.size ? buffer.subarray(0, n) : buffer.subarray(0, Math.max(0, entry.size - (padded - left)));
          if (out && data.length > 0) await out.write(data);
          left -= n;
        }
        if (out) {
          await out.commit();
          extracted.set(name, entry.size);
        }
      } catch (err) {
        await out?.abort();
        throw err;
      }
    }
  } finally {
    await reader.close();
  }
  return extracted;
}
