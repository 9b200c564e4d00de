import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../compiler/cli/command.ts';
import { command } from '../../compiler/cli/commands/compile.ts';
import { dataChecksum } from '../../compiler/pipeline/compile.ts';
import { parseCompileConfig } from '../../compiler/pipeline/config.ts';
import { loadCompileData } from '../../compiler/pipeline/stages.ts';
import { tempDirs } from './helpers/temp.ts';

const temp = tempDirs();
afterAll(temp.cleanup);

const CONFIG = new URL('../../configs/fashion-mnist.json', import.meta.url).pathname;

/** IDX files (the MNIST format): big-endian magic, dimensions, then bytes. */
function idx(magic: number, dims: number[], bytes: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return gzipSync(Buffer.concat([header, bytes]));
}

async function fakeMnist(count: number): Promise<string> {
  const dir = await temp.make('facet-cli-');
  for (const prefix of ['train', 't10k']) {
    const images = Uint8Array.from({ length: count * 28 * 28 }, (_, i) => (i * 7) % 256);
    const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
    await writeFile(join(dir, `${prefix}-images-idx3-ubyte.gz`), idx(0x803, [count, 28, 28], images));
    await writeFile(join(dir, `${prefix}-labels-idx1-ubyte.gz`), idx(0x801, [count], labels));
  }
  return dir;
}

const run = (argv: string[]) => command.run(argv);

describe('facet compile CLI', () => {
  it('usage errors name the problem', async () => {
    await expect(run([])).rejects.toThrow(UsageError);
    await expect(run([])).rejects.toThrow(/--config FILE is required/);
    await expect(run(['--config', CONFIG, '--bogus'])).rejects.toThrow(/Unknown option '--bogus'/);
    await expect(run(['--config', CONFIG, '--prefetch', 'gpu'])).rejects.toThrow(/--prefetch must be worker or inline/);
    await expect(run(['--config', CONFIG, '--engine', 'tfjs', '--backend', 'tpu'])).rejects.toThrow(/--backend must be one of/);
    await expect(run(['--config', CONFIG, '--provider', 'tpu'])).rejects.toThrow(/--provider must be auto, cpu, webgpu, cuda/);
    await expect(run(['--config', CONFIG, '--checkpoint-every', '0'])).rejects.toThrow(/--checkpoint-every must be a positive integer/);
    await expect(run(['--config', CONFIG, '--conv-kernel', 'nchwc4'])).rejects.toThrow(/--conv-kernel must be nchw, nchwc8, nchwc16, got "nchwc4"/);
    await expect(run(['--config', CONFIG, '--engine', 'tfjs', '--conv-kernel', 'nchw'])).rejects.toThrow(/--conv-kernel applies to --engine ort/);
    await expect(run(['--config', CONFIG, '--seed=1.5', '--threads', '1'])).rejects.toThrow(/--seed must be a non-negative integer/);
    // Subtask budgets: a MACs fraction or keep ratios, one of the two, and only with --subtask.
    const sub = ['--config', CONFIG, '--threads', '1', '--subtask', 'x=0,1'];
    await expect(run([...sub, '--flops', '2'])).rejects.toThrow(/--flops must be a fraction in \(0, 1\], got "2"/);
    await expect(run([...sub, '--flops', '0.5', '--keep', '0.5'])).rejects.toThrow(/give --flops or --keep, not both/);
    await expect(run([...sub, '--keep', '0'])).rejects.toThrow(/--keep must be a fraction in \(0, 1\], got "0"/);
    await expect(run([...sub, '--keep', 's1b0.conv1=1.5'])).rejects.toThrow(/--keep s1b0\.conv1 must be a fraction in \(0, 1\], got "1\.5"/);
    await expect(run([...sub, '--keep', 's1b0.conv1=0.5,s1b0.conv1=0.25'])).rejects.toThrow(/--keep names layer "s1b0\.conv1" twice/);
    await expect(run([...sub, '--keep', 's1b0.conv1=0.5,=0.2'])).rejects.toThrow(/--keep must be a ratio or LAYER=RATIO,LAYER=RATIO, got "=0\.2"/);
    await expect(run(['--config', CONFIG, '--keep', '0.5'])).rejects.toThrow(/--keep applies to --subtask models; set flopsFraction or keepRatios in the config/);
    const dir = await temp.make('facet-cli-');
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ ...JSON.parse(await readFile(CONFIG, 'utf8')), seed: -1 }));
    await expect(run(['--config', bad, '--threads', '1'])).rejects.toThrow(/bad\.json is not a valid compile config:\n {2}seed:/);
  });

  it('loads the configured data set with checksums, and rejects subtasks naming unknown classes', async () => {
    const dir = await fakeMnist(20);
    const json = JSON.parse(await readFile(CONFIG, 'utf8'));
    json.dataset = { ...json.dataset, name: 'mnist', dir };
    const data = await loadCompileData(parseCompileConfig({ ...json, subtasks: [] }));
    expect([data.train.count, data.test.count, data.train.height, data.train.channels]).toEqual([20, 20, 28, 1]);
    expect(data.checksums.train).toBe(dataChecksum(data.train));
    expect(data.checksums.train).toBe(data.checksums.test); // identical fake splits
    // The shipped config names Fashion-MNIST classes; MNIST's are digits.
    const file = join(dir, 'mnist.json');
    await writeFile(file, JSON.stringify(json));
    await expect(run(['--config', file, '--threads', '1', '--cache-dir', join(dir, 'cache'), '--out', join(dir, 'out')])).rejects.toThrow(/mnist\.json: subtasks\.0\.classes\.0: no class named "Sandal"/);
    // Channel count must match the normalization.
    await expect(loadCompileData(parseCompileConfig({ ...json, subtasks: [], dataset: { ...json.dataset, mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] } }))).rejects.toThrow(/dataset\.mean has 3 entries but mnist images have 1 channels/);
  });
});
