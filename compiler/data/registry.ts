/**
 * Finds a named data set on disk and loads one split of it. Search order: the folder the
 * caller gives (and its <name> sub-folder), else $FACET_DATA_DIR/<name>,
 * ~/.cache/facet/datasets/<name>, and for Fashion-MNIST Debian's
 * /usr/share/datasets/fashion-mnist (package dataset-fashion-mnist).
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DATASET_LABELS } from '../../shared/labels.ts';
import { CIFAR_FILES, loadCifar } from './cifar.ts';
import { type FolderOptions, loadImageFolder } from './folder.ts';
import { loadIdx } from './idx.ts';
import type { LabelledImages } from './types.ts';

export const DATASET_IDS = ['fashion-mnist', 'mnist', 'cifar10', 'cifar100', 'folder'] as const;
export type DatasetId = (typeof DATASET_IDS)[number];
export type Split = 'train' | 'test';

export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Sub-folders the official CIFAR tarballs unpack into, tried inside each search folder. */
const CIFAR_SUBDIRS: Record<'cifar10' | 'cifar100', string> = { cifar10: 'cifar-10-batches-bin', cifar100: 'cifar-100-binary' };

export interface LoadOptions {
  name: DatasetId;
  split: Split;
  dir?: string;
  /** Image folders only: see FolderOptions. */
  size?: FolderOptions['size'];
  channels?: FolderOptions['channels'];
}

export class DatasetNotFoundError extends Error {
  override name = 'DatasetNotFoundError';
}

/** Where the data set's files live by default (what `facet data fetch` writes to). */
export function defaultDataDir(name: string): string {
  if (process.env.FACET_DATA_DIR) return join(process.env.FACET_DATA_DIR, name);
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cache, 'facet', 'datasets', name);
}

/** The folders searched, in order, each with a note for the not-found message. */
export function searchFolders(name: DatasetId, dir?: string): string[] {
  if (dir) return [dir, join(dir, name)];
  const folders = [] as string[];
  if (process.env.FACET_DATA_DIR) folders.push(join(process.env.FACET_DATA_DIR, name));
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  folders.push(join(cache, 'facet', 'datasets', name));
  if (name === 'fashion-mnist') folders.push(DEBIAN_FASHION_MNIST_DIR);
  return folders;
}

const isFile = (p: string) => existsSync(p) && statSync(p).isFile();
const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/** IDX file names: the usual dash form and MNIST's occasional dot form, raw or gzipped. */
function idxCandidates(prefix: 'train' | 't10k', kind: 'images' | 'labels'): string[] {
  const dims = kind === 'images' ? 3 : 1;
  const stems = [`${prefix}-${kind}-idx${dims}-ubyte`, `${prefix}-${kind}.idx${dims}-ubyte`];
  return stems.flatMap((s) => [`${s}.gz`, s]);
}

export interface LocatedFiles {
  folder: string;
  files: string[];
}

/** Finds the split's files in the first folder that has all of them. */
export function locateDataset(name: Exclude<DatasetId, 'folder'>, split: Split, dir?: string): LocatedFiles {
  const tried: string[] = [];
  for (const base of searchFolders(name, dir)) {
    const folders = name === 'cifar10' || name === 'cifar100' ? [base, join(base, CIFAR_SUBDIRS[name])] : [base];
    for (const folder of folders) {
      const wanted = requiredFiles(name, split);
      const found = wanted.map((alternatives) => alternatives.map((f) => join(folder, f)).find(isFile));
      if (found.every((f) => f !== undefined)) return { folder, files: found as string[] };
      const present = found.filter((f) => f !== undefined).length;
      tried.push(`  ${folder}${!isDir(folder) ? ' (no such folder)' : present > 0 ? ` (incomplete: missing ${wanted.filter((_, i) => !found[i]).map((a) => a[0]).join(', ')})` : ' (no matching files)'}`);
    }
  }
  const wantedText = requiredFiles(name, split).map((a) => a[0]).join(', ');
  throw new DatasetNotFoundError(
    [`${name} ${split} split not found. Looked for ${wantedText} in:`, ...tried, howToGet(name)].join('\n'),
  );
}

function requiredFiles(name: Exclude<DatasetId, 'folder'>, split: Split): string[][] {
  if (name === 'cifar10' || name === 'cifar100') return CIFAR_FILES[name][split].map((f) => [f]);
  const prefix = split === 'train' ? 'train' : 't10k';
  return [idxCandidates(prefix, 'images'), idxCandidates(prefix, 'labels')];
}

function howToGet(name: Exclude<DatasetId, 'folder'>): string {
  const target = defaultDataDir(name);
  switch (name) {
    case 'fashion-mnist':
      return `Get it with \`facet data fetch fashion-mnist\` (downloads to ${target}), or offline on Debian/Ubuntu: apt-get install dataset-fashion-mnist.`;
    case 'mnist':
      return `Put the four MNIST IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in ${target} or pass --dir.`;
    default:
      return `Get it with \`facet data fetch ${name}\` (downloads to ${target}), or pass --dir to a folder holding the binary batches.`;
  }
}

/** Where an image-folder set's split lives: <dir>/<split>/ when present, else <dir> itself for train. */
export function locateImageFolder(split: Split, dir: string | undefined): string {
  if (!dir) throw new DatasetNotFoundError('the folder data set needs a folder: pass dir (--dir <root>, laid out as <root>/<class>/*.png|jpg)');
  const splitDir = join(dir, split);
  if (isDir(splitDir)) return splitDir;
  if (split === 'train' && isDir(dir)) return dir;
  if (!isDir(dir)) throw new DatasetNotFoundError(`${dir}: folder not found`);
  throw new DatasetNotFoundError(`${dir}: no ${split} split (expected ${splitDir}/<class>/*.png|jpg)`);
}

export interface LoadedDataset {
  data: LabelledImages;
  /** The folder the files came from. */
  folder: string;
  files: string[];
}

export async function loadDatasetWithSource(options: LoadOptions): Promise<LoadedDataset> {
  const { name, split, dir } = options;
  if (name === 'folder') {
    const root = locateImageFolder(split, dir);
    const data = await loadImageFolder(root, { name, split, size: options.size, channels: options.channels });
    return { data, folder: root, files: [] };
  }
  if (!(DATASET_IDS as readonly string[]).includes(name)) {
    throw new DatasetNotFoundError(`unknown data set "${name}": expected one of ${DATASET_IDS.join(', ')}`);
  }
  const { folder, files } = locateDataset(name, split, dir);
  const classNames = DATASET_LABELS[name];
  const data = name === 'cifar10' || name === 'cifar100'
    ? await loadCifar(files, { variant: name, split, classNames })
    : await loadIdx({ imagesPath: files[0]!, labelsPath: files[1]!, name, split, classNames });
  return { data, folder, files };
}

export async function loadDataset(options: LoadOptions): Promise<LabelledImages> {
  return (await loadDatasetWithSource(options)).data;
}
