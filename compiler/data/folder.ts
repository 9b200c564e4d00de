/**
 * Image-folder data sets: `root/<class name>/*.png|jpg|jpeg`. Classes are the sub-folder
 * names sorted by code unit (the same order on every machine); images within a class are
 * sorted by file name, so the loaded order is deterministic.
 */
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { RawImage } from '../../shared/image.ts';
import { decodeImage } from './decode-image.ts';
import { DataError } from './errors.ts';
import type { LabelledImages } from './types.ts';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

export interface FolderOptions {
  name?: string;
  split?: string;
  /** Resize every image to this size; without it all images must already share one size. */
  size?: { width: number; height: number };
  /** Output channels; default 1 when every image is grayscale, else 3. */
  channels?: 1 | 3;
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function listDir(path: string) {
  try {
    return await readdir(path, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataError(path, code === 'ENOENT' ? 'folder not found' : code === 'ENOTDIR' ? 'not a folder' : `cannot list (${code})`);
  }
}

/** Class folders and their image files, sorted; fails on no classes or an empty class. */
export async function scanImageFolder(root: string): Promise<{ classNames: string[]; files: string[][] }> {
  const classNames = (await listDir(root))
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort(byCodeUnit);
  if (classNames.length === 0) throw new DataError(root, 'no class folders found (expected <root>/<class name>/*.png|jpg|jpeg)');
  const files: string[][] = [];
  for (const name of classNames) {
    const dir = join(root, name);
    const images = (await listDir(dir))
      .filter((e) => e.isFile() && IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase()))
      .map((e) => e.name)
      .sort(byCodeUnit)
      .map((f) => join(dir, f));
    if (images.length === 0) throw new DataError(dir, `class folder "${name}" has no .png/.jpg/.jpeg images`);
    files.push(images);
  }
  return { classNames, files };
}

export async function loadImageFolder(root: string, options: FolderOptions = {}): Promise<LabelledImages> {
  const { classNames, files } = await scanImageFolder(root);
  const decoded: { file: string; image: RawImage; label: number }[] = [];
  for (const [label, classFiles] of files.entries()) {
    for (const file of classFiles) {
      let image: RawImage;
      try {
        image = decodeImage(await readFile(file));
      } catch (err) {
        throw new DataError(file, `cannot decode image: ${(err as Error).message}`);
      }
      decoded.push({ file, image, label });
    }
  }

  const channels = options.channels ?? (decoded.every((d) => d.image.channels === 1) ? 1 : 3);
  const first = decoded[0]!;
  const { width, height } = options.size ?? first.image;
  if (!options.size) {
    const odd = decoded.find((d) => d.image.width !== width || d.image.height !== height);
    if (odd) {
      throw new DataError(odd.file, `is ${odd.image.width}×${odd.image.height} but ${first.file} is ${width}×${height}; all images must have the same size unless a target size is given`);
    }
  }
  const needsConversion = decoded.some((d) => d.image.channels !== channels || d.image.width !== width || d.image.height !== height);
  // Only pulled in when some image must change (shared/preprocess is the one resampler).
  const preprocess = needsConversion ? await import('../../shared/preprocess.ts') : undefined;

  const pixelBytes = width * height * channels;
  const images = new Uint8Array(decoded.length * pixelBytes);
  const labels = new Uint16Array(decoded.length);
  for (const [i, { image, label }] of decoded.entries()) {
    let out = image;
    if (out.channels !== channels) out = preprocess!.toChannels(out, channels);
    if (out.width !== width || out.height !== height) out = preprocess!.resizeBilinear(out, width, height);
    images.set(out.data.subarray(0, pixelBytes), i * pixelBytes);
    labels[i] = label;
  }
  return {
    name: options.name ?? 'folder', split: options.split ?? 'train', count: decoded.length,
    height, width, channels, images, labels, classNames,
  };
}
