/**
 * IDX files (MNIST, Fashion-MNIST): a 4-byte magic 00 00 <type> <dims>, one big-endian
 * uint32 per dimension, then the samples. We read unsigned-byte images (0x00000803,
 * N×H×W) and labels (0x00000801, N), raw or gzipped.
 */
import { stat } from 'node:fs/promises';
import { ByteReader } from './byte-reader.ts';
import { DataError } from './errors.ts';
import type { LabelledImages } from './types.ts';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;
/** No real IDX set comes close; a bigger header is corruption, not data to allocate for. */
const MAX_IDX_BYTES = 2 ** 31 - 1;

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** Reads the magic and dimensions, checking them against what the caller expects. */
async function readHeader(reader: ByteReader, magic: number, what: string): Promise<number[]> {
  const head = await reader.read(4);
  if (head.length < 4) throw new DataError(reader.path, `truncated: ${head.length} bytes, too short for an IDX header`);
  const view = new DataView(head.buffer, head.byteOffset, 4);
  const found = view.getUint32(0);
  if (found !== magic) {
    const hint = found === IDX_IMAGES_MAGIC || found === IDX_LABELS_MAGIC
      ? ` (this looks like an IDX ${found === IDX_IMAGES_MAGIC ? 'images' : 'labels'} file; are the image and label paths swapped?)`
      : head[0] === 0 && head[1] === 0 && head[2] !== 0x08
        ? ` (element type 0x${head[2]!.toString(16)} is not unsigned byte 0x08)`
        : '';
    throw new DataError(reader.path, `bad magic ${hex(found)}, expected ${hex(magic)} for IDX ${what}${hint}`);
  }
  const dims = magic & 0xff;
  const raw = await reader.read(4 * dims);
  if (raw.length < 4 * dims) throw new DataError(reader.path, `truncated: header needs ${4 + 4 * dims} bytes, file has ${4 + raw.length}`);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.length);
  return Array.from({ length: dims }, (_, i) => dv.getUint32(4 * i));
}

/** Reads a whole IDX body into a fresh array, failing on a short or over-long file. */
async function readBody(reader: ByteReader, shape: number[], unit: string): Promise<Uint8Array> {
  const bytes = shape.reduce((a, b) => a * b, 1);
  const shapeText = shape.join('×');
  if (bytes > MAX_IDX_BYTES) throw new DataError(reader.path, `header claims ${shapeText} = ${bytes} bytes, more than the ${MAX_IDX_BYTES} an IDX file here may hold; the header is corrupt`);
  if (!reader.gzipped) {
    // For a raw file the size is known up front: fail before allocating.
    const size = (await stat(reader.path)).size - reader.position;
    if (size < bytes) throw new DataError(reader.path, `truncated: header says ${shapeText} ${unit} = ${bytes} bytes, file has ${size}`);
  }
  const body = new Uint8Array(bytes);
  const got = await reader.fill(body);
  if (got < bytes) throw new DataError(reader.path, `truncated: header says ${shapeText} ${unit} = ${bytes} bytes, file has ${got}`);
  const extra = await reader.countRemaining();
  if (extra > 0) throw new DataError(reader.path, `${extra} unexpected bytes after the ${shapeText} ${unit} the header announces`);
  return body;
}

export interface IdxImages { count: number; height: number; width: number; pixels: Uint8Array }

export async function readIdxImages(path: string): Promise<IdxImages> {
  const reader = await ByteReader.open(path);
  try {
    const [count, height, width] = (await readHeader(reader, IDX_IMAGES_MAGIC, 'images')) as [number, number, number];
    if (height === 0 || width === 0) throw new DataError(path, `image size ${height}×${width} is empty`);
    const pixels = await readBody(reader, [count, height, width], 'pixels');
    return { count, height, width, pixels };
  } finally {
    await reader.close();
  }
}

export async function readIdxLabels(path: string): Promise<Uint8Array> {
  const reader = await ByteReader.open(path);
  try {
    const [count] = (await readHeader(reader, IDX_LABELS_MAGIC, 'labels')) as [number];
    return await readBody(reader, [count], 'labels');
  } finally {
    await reader.close();
  }
}

export interface IdxPair {
  imagesPath: string;
  labelsPath: string;
  name: string;
  split: string;
  classNames: string[];
}

/** Loads a matching images/labels pair, checking counts agree and every label names a class. */
export async function loadIdx({ imagesPath, labelsPath, name, split, classNames }: IdxPair): Promise<LabelledImages> {
  // Read both files concurrently, but report problems in a fixed order (images first), so
  // the same broken pair always gives the same message.
  const [imagesResult, labelsResult] = await Promise.allSettled([readIdxImages(imagesPath), readIdxLabels(labelsPath)]);
  if (imagesResult.status === 'rejected') throw imagesResult.reason;
  if (labelsResult.status === 'rejected') throw labelsResult.reason;
  const images = imagesResult.value;
  const rawLabels = labelsResult.value;
  if (rawLabels.length !== images.count) {
    throw new DataError(labelsPath, `has ${rawLabels.length} labels but ${imagesPath} has ${images.count} images`);
  }
  const labels = new Uint16Array(rawLabels.length);
  for (let i = 0; i < rawLabels.length; i++) {
    const label = rawLabels[i]!;
    if (label >= classNames.length) {
      throw new DataError(labelsPath, `label ${label} at index ${i} is out of range: ${name} has ${classNames.length} classes (0–${classNames.length - 1})`);
    }
    labels[i] = label;
  }
  return {
    name, split, count: images.count, height: images.height, width: images.width, channels: 1,
    images: images.pixels, labels, classNames: [...classNames],
  };
}
