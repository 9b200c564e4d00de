/** `facet data fetch|info`: get a data set onto disk, and see what the loaders find. */
import { type Command, UsageError, parseFlags } from '../command.ts';
import { DATASET_SOURCES, FETCHABLE, type FetchableDataset, fetchDataset } from '../../data/fetch.ts';
import { DATASET_IDS, type DatasetId, loadDatasetWithSource, type Split } from '../../data/registry.ts';

const FETCH_HELP = `Usage: facet data fetch <fashion-mnist|cifar10|cifar100> [--dir D] [--base-url URL]

Download a data set from its canonical source, verify its pinned checksum (sha256 of
Fashion-MNIST's IDX content; md5 of the CIFAR tarballs), unpack it and write the files
atomically.
  --dir D          destination folder (default: $FACET_DATA_DIR/<name>, else
                   ~/.cache/facet/datasets/<name>)
  --base-url URL   download from this mirror instead of the canonical hosts
Sources: ${FETCHABLE.map((n) => `${n} ${DATASET_SOURCES[n].baseUrls[0]}`).join(', ')}
Offline, Fashion-MNIST comes with Debian/Ubuntu: apt-get install dataset-fashion-mnist.`;

const INFO_HELP = `Usage: facet data info <fashion-mnist|mnist|cifar10|cifar100|folder> [--dir D]
                      [--split train|test] [--size WxH] [--channels 1|3]

Load a data set and print its image counts, shape, classes (with per-class counts) and
the folder it was found in.
  --dir D          look only in D (and D/<name>); for "folder", the root holding
                   <class>/*.png|jpg (or train/ and test/ with those inside)
  --split S        only this split (default: both; a folder without test/ has only train)
  --size WxH       folder only: resize every image (PIL-style bilinear)
  --channels C     folder only: 1 (gray) or 3 (RGB); default gray only when every image
                   is gray

Without --dir, data sets are looked for in $FACET_DATA_DIR/<name>,
~/.cache/facet/datasets/<name> and, for Fashion-MNIST, /usr/share/datasets/fashion-mnist.`;

const HELP = `Usage:
  facet data fetch <data set> [options]   download and verify a data set
  facet data info <data set> [options]    show what the loaders find on disk

${FETCH_HELP}

${INFO_HELP}`;

function parse(argv: string[], options: Record<string, { type: 'string' }>) {
  return parseFlags({ args: argv, options, allowPositionals: true, strict: true });
}

async function fetchCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { dir: { type: 'string' }, 'base-url': { type: 'string' } });
  const [name, ...extra] = positionals;
  if (!name || extra.length > 0) throw new UsageError(`fetch needs exactly one data set: ${FETCHABLE.join(', ')}`);
  if (!(FETCHABLE as readonly string[]).includes(name)) {
    throw new UsageError(`cannot fetch "${name}": expected one of ${FETCHABLE.join(', ')}${name === 'mnist' ? ' (MNIST: put its IDX files in a folder and pass --dir)' : ''}`);
  }
  if (values['base-url'] !== undefined && !/^https?:\/\//.test(values['base-url'])) {
    throw new UsageError(`--base-url must be an http:// or https:// URL, got "${values['base-url']}"`);
  }
  const result = await fetchDataset(name as FetchableDataset, { dir: values.dir, baseUrl: values['base-url'] });
  console.log(`${name}: ${result.files.length} files in ${result.dir} (${result.downloaded.length} downloaded, ${result.skipped.length} already present)`);
}

function parseFolderOptions(name: string, size: string | undefined, channels: string | undefined) {
  if ((size !== undefined || channels !== undefined) && name !== 'folder') throw new UsageError('--size and --channels apply to the folder data set only');
  const options: { size?: { width: number; height: number }; channels?: 1 | 3 } = {};
  if (size !== undefined) {
    const match = /^(\d+)x(\d+)$/.exec(size);
    if (!match || Number(match[1]) < 1 || Number(match[2]) < 1) throw new UsageError(`--size must be WIDTHxHEIGHT, e.g. 32x32, got "${size}"`);
    options.size = { width: Number(match[1]), height: Number(match[2]) };
  }
  if (channels !== undefined) {
    if (channels !== '1' && channels !== '3') throw new UsageError(`--channels must be 1 or 3, got "${channels}"`);
    options.channels = Number(channels) as 1 | 3;
  }
  return options;
}

async function infoCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { dir: { type: 'string' }, split: { type: 'string' }, size: { type: 'string' }, channels: { type: 'string' } });
  const [name, ...extra] = positionals;
  if (!name || extra.length > 0) throw new UsageError(`info needs exactly one data set: ${DATASET_IDS.join(', ')}`);
  if (!(DATASET_IDS as readonly string[]).includes(name)) throw new UsageError(`unknown data set "${name}": expected one of ${DATASET_IDS.join(', ')}`);
  if (values.split !== undefined && values.split !== 'train' && values.split !== 'test') {
    throw new UsageError(`--split must be train or test, got "${values.split}"`);
  }
  const folderOptions = parseFolderOptions(name, values.size, values.channels);
  // A folder data set without test/ has only a train split; skip test quietly then.
  const splits: Split[] = values.split ? [values.split as Split] : ['train', 'test'];
  const loaded = [];
  for (const split of splits) {
    const optionalTest = name === 'folder' && !values.split && split === 'test';
    try {
      loaded.push(await loadDatasetWithSource({ name: name as DatasetId, split, dir: values.dir, ...folderOptions }));
    } catch (err) {
      if (optionalTest && /no test split/.test((err as Error).message)) continue;
      throw err;
    }
  }
  const first = loaded[0]!.data;
  const lines = [`${name}: ${first.height}×${first.width}×${first.channels} (H×W×C), ${first.classNames.length} classes`];
  for (const { data, folder } of loaded) lines.push(`  ${data.split.padEnd(5)} ${String(data.count).padStart(7)} images  from ${folder}`);
  const counts = loaded.map(({ data }) => {
    const histogram = new Array<number>(data.classNames.length).fill(0);
    for (const label of data.labels) histogram[label]!++;
    return histogram;
  });
  const width = Math.max(...first.classNames.map((c) => c.length), 5);
  lines.push(`  ${'class'.padEnd(width + 5)} ${loaded.map(({ data }) => data.split.padStart(7)).join(' ')}`);
  first.classNames.forEach((className, c) => {
    lines.push(`  ${String(c).padStart(3)}  ${className.padEnd(width)} ${counts.map((h) => String(h[c]).padStart(7)).join(' ')}`);
  });
  console.log(lines.join('\n'));
}

export const command: Command = {
  name: 'data',
  summary: 'Fetch a data set (fashion-mnist, cifar10, cifar100) or show what is on disk',
  help: HELP,
  subcommandHelp: { fetch: FETCH_HELP, info: INFO_HELP },
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'fetch') return fetchCommand(rest);
    if (sub === 'info') return infoCommand(rest);
    throw new UsageError(sub ? `unknown subcommand "${sub}": expected fetch or info` : 'expected a subcommand: fetch or info (see facet data --help)');
  },
};
