import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../compiler/cli/command.ts';
import { command } from '../../compiler/cli/commands/train.ts';
import { DEBIAN_FASHION_MNIST_DIR } from '../../compiler/data/registry.ts';
import { readParams } from '../../compiler/train/loop.ts';

const root = mkdtempSync(join(tmpdir(), 'facet-train-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('facet train', () => {
  it.skipIf(!existsSync(DEBIAN_FASHION_MNIST_DIR))('trains a tiny ResNet on a Fashion-MNIST sample and writes the run directory', async () => {
    const out = join(root, 'run');
    const args = ['--dataset', 'fashion-mnist', '--arch', 'resnet8', '--width', '0.25', '--epochs', '1', '--batch', '10', '--limit', '50', '--val', '0.2'];
    await command.run([...args, '--out', out, '--threads', '1', '--seed', '3', '--prefetch', 'inline']);
    const summary = JSON.parse(readFileSync(join(out, 'train.json'), 'utf8'));
    expect(summary.trainImages).toBe(40);
    expect(summary.valImages).toBe(10);
    expect(summary.history).toHaveLength(1);
    expect(summary.normalize).toEqual({ mean: [0.286], std: [0.353] });
    expect(summary.augment).toEqual({ flip: true, pad: 4, cutout: 0 });
    expect(summary.stats.steps).toBe(4);
    const graph = JSON.parse(readFileSync(join(out, 'graph.json'), 'utf8'));
    const { params, meta } = readParams(join(out, 'best.ckpt'));
    expect(meta.arch).toBe(graph.arch);
    expect(params.get('fc/kernel')!.shape).toEqual([4 * 0.25 * 16, 10]);
  });

  it('rejects bad flags with usage errors naming the flag', async () => {
    const base = ['--dataset', 'fashion-mnist', '--arch', 'resnet20', '--epochs', '1', '--out', join(root, 'x')];
    const cases: [string[], RegExp][] = [
      [['--arch', 'resnet20', '--epochs', '1', '--out', 'x'], /--dataset is required/],
      [[...base, '--batch', '0'], /--batch must be a positive integer, got "0"/],
      [[...base, '--val', '1'], /--val must be in \[0, 1\)/],
      [[...base, '--optimizer', 'adam'], /--optimizer must be sgd or radam/],
      [[...base, '--schedule', 'step'], /--schedule step needs --milestones/],
      [[...base, '--degrade', 'jpeg,fog'], /unknown degradation "fog"/],
      [[...base, '--degrade', 'jpeg,blur,awgn', '--batch', '128'], /cannot be split evenly among 3/],
      [[...base, '--engine', 'tfjs', '--backend', 'tpu'], /--backend must be one of/], [[...base, '--engine', 'onnx'], /--engine must be ort or tfjs/], [[...base, '--threads', '0'], /--threads must be a positive integer/], [[...base, '--backend', 'wasm'], /--backend chooses the tfjs backend/],
      [[...base, '--dataset', 'imagenet'], /--dataset must be one of/],
      [[...base, '--frobnicate'], /Unknown option '--frobnicate'/],
    ];
    for (const [argv, message] of cases) {
      const err = await command.run(argv).then(() => null, (e: unknown) => e);
      expect(err, argv.join(' ')).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(message);
    }
  });
});
