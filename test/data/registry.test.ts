import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatasetNotFoundError, DEBIAN_FASHION_MNIST_DIR, loadDataset, loadDatasetWithSource, searchFolders } from '../../compiler/data/registry.ts';
import { FIXTURES, tempDir } from './helpers.ts';

const dir = tempDir();
const FM100 = join(FIXTURES, 'fashion-mnist-100');
let savedEnv: NodeJS.ProcessEnv;
let testNumber = 0;
let env = '';
let cache = '';

beforeEach(() => {
  savedEnv = { ...process.env };
  // Point the user-level search folders at fresh, empty temp folders for each test.
  testNumber++;
  env = process.env.FACET_DATA_DIR = join(dir, `env${testNumber}`);
  cache = process.env.XDG_CACHE_HOME = join(dir, `cache${testNumber}`);
});
afterEach(() => {
  process.env = savedEnv;
});

describe('data set registry', () => {
  it('searches $FACET_DATA_DIR, then the user cache, then (Fashion-MNIST only) Debian\'s folder', () => {
    expect(searchFolders('fashion-mnist')).toEqual([join(env, 'fashion-mnist'), join(cache, 'facet', 'datasets', 'fashion-mnist'), DEBIAN_FASHION_MNIST_DIR]);
    expect(searchFolders('mnist')).toEqual([join(env, 'mnist'), join(cache, 'facet', 'datasets', 'mnist')]);
    expect(searchFolders('cifar10', '/data')).toEqual(['/data', '/data/cifar10']);
  });

  it('prefers $FACET_DATA_DIR over the cache and Debian\'s copy', async () => {
    const envCopy = join(env, 'fashion-mnist');
    cpSync(FM100, envCopy, { recursive: true });
    const cacheCopy = join(cache, 'facet', 'datasets', 'fashion-mnist');
    cpSync(FM100, cacheCopy, { recursive: true });
    const found = await loadDatasetWithSource({ name: 'fashion-mnist', split: 'test' });
    expect(found.folder).toBe(envCopy);
    expect(found.files).toEqual([join(envCopy, 't10k-images-idx3-ubyte.gz'), join(envCopy, 't10k-labels-idx1-ubyte.gz')]);
    expect(found.data.count).toBe(100);
    delete process.env.FACET_DATA_DIR;
    expect((await loadDatasetWithSource({ name: 'fashion-mnist', split: 'test' })).folder).toBe(cacheCopy);
  });

  it('accepts MNIST with raw files named in the dot style, under <dir>/<name>', async () => {
    const root = join(dir, 'mnist-root');
    mkdirSync(join(root, 'mnist'), { recursive: true });
    const { gunzipSync } = await import('node:zlib');
    const { readFileSync, writeFileSync } = await import('node:fs');
    writeFileSync(join(root, 'mnist', 't10k-images.idx3-ubyte'), gunzipSync(readFileSync(join(FM100, 't10k-images-idx3-ubyte.gz'))));
    writeFileSync(join(root, 'mnist', 't10k-labels.idx1-ubyte'), gunzipSync(readFileSync(join(FM100, 't10k-labels-idx1-ubyte.gz'))));
    const ds = await loadDataset({ name: 'mnist', split: 'test', dir: root });
    expect(ds.count).toBe(100);
    expect(ds.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  });

  it('lists where it looked and how to get the data when nothing is found', async () => {
    const partial = join(dir, 'partial');
    mkdirSync(partial);
    cpSync(join(FM100, 't10k-images-idx3-ubyte.gz'), join(partial, 't10k-images-idx3-ubyte.gz'));
    const err = await loadDataset({ name: 'fashion-mnist', split: 'test', dir: partial }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetNotFoundError);
    expect((err as Error).message).toBe([
      'fashion-mnist test split not found. Looked for t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz in:',
      `  ${partial} (incomplete: missing t10k-labels-idx1-ubyte.gz)`,
      `  ${join(partial, 'fashion-mnist')} (no such folder)`,
      `Get it with \`facet data fetch fashion-mnist\` (downloads to ${join(env, 'fashion-mnist')}), or offline on Debian/Ubuntu: apt-get install dataset-fashion-mnist.`,
    ].join('\n'));
    const cifar = await loadDataset({ name: 'cifar100', split: 'train' }).catch((e: unknown) => e);
    expect((cifar as Error).message).toContain(`  ${join(env, 'cifar100')} (no such folder)\n  ${join(env, 'cifar100', 'cifar-100-binary')} (no such folder)\n  ${join(cache, 'facet', 'datasets', 'cifar100')} (no such folder)`);
    expect((cifar as Error).message).toMatch(/Get it with `facet data fetch cifar100`/);
  });

  it.skipIf(!existsSync(DEBIAN_FASHION_MNIST_DIR))(
    `loads the real Fashion-MNIST from ${DEBIAN_FASHION_MNIST_DIR}: 60000/10000 images, balanced classes${existsSync(DEBIAN_FASHION_MNIST_DIR) ? '' : ' (skipped: not installed; apt-get install dataset-fashion-mnist)'}`,
    async () => {
      for (const [split, count] of [['train', 60000], ['test', 10000]] as const) {
        const { data, folder } = await loadDatasetWithSource({ name: 'fashion-mnist', split });
        expect(folder).toBe(DEBIAN_FASHION_MNIST_DIR);
        expect([data.count, data.height, data.width, data.channels]).toEqual([count, 28, 28, 1]);
        const histogram = new Array(10).fill(0);
        for (const label of data.labels) histogram[label]++;
        expect(histogram).toEqual(new Array(10).fill(count / 10));
        expect(data.classNames[9]).toBe('Ankle boot');
      }
    },
  );
});
