import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { command } from '../../compiler/cli/commands/data.ts';
import { UsageError } from '../../compiler/cli/command.ts';
import { FIXTURES } from './helpers.ts';

const SHAPES = join(FIXTURES, 'shapes');

/** Runs `facet data …` in-process and returns what it printed. */
async function run(...argv: string[]): Promise<string> {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  await command.run(argv);
  return log.mock.calls.map((c) => c.join(' ')).join('\n');
}

afterEach(() => vi.restoreAllMocks());

describe('facet data info', () => {
  it('prints shape, per-split counts and sources, and a per-class table', async () => {
    const text = await run('info', 'folder', '--dir', SHAPES);
    const lines = text.split('\n');
    expect(lines[0]).toBe('folder: 8×8×3 (H×W×C), 3 classes');
    expect(lines[1]).toMatch(new RegExp(`^  train +9 images  from ${join(SHAPES, 'train')}$`));
    expect(lines[2]).toMatch(new RegExp(`^  test +3 images  from ${join(SHAPES, 'test')}$`));
    expect(lines.slice(4).map((l) => l.trim().split(/\s+/))).toEqual([['0', 'cross', '3', '1'], ['1', 'disk', '3', '1'], ['2', 'ring', '3', '1']]);
  });

  it('loads one split of an IDX set from --dir, with the data set\'s class names', async () => {
    const text = await run('info', 'fashion-mnist', '--dir', join(FIXTURES, 'fashion-mnist-100'), '--split', 'test');
    expect(text).toContain('fashion-mnist: 28×28×1 (H×W×C), 10 classes');
    expect(text).toMatch(/ {2}test +100 images {2}from .*fashion-mnist-100/);
    expect(text).toMatch(/9 {2}Ankle boot +\d+/);
    expect(text).not.toContain('train');
  });

  it('applies --size and --channels to a folder', async () => {
    expect((await run('info', 'folder', '--dir', SHAPES, '--size', '4x5', '--channels', '1')).split('\n')[0]).toBe('folder: 5×4×1 (H×W×C), 3 classes');
  });

  it('rejects bad arguments as usage errors', async () => {
    for (const [argv, message] of [
      [['info'], /info needs exactly one data set/],
      [['info', 'imagenet'], /unknown data set "imagenet"/],
      [['info', 'folder', '--dir', SHAPES, '--split', 'val'], /--split must be train or test, got "val"/],
      [['info', 'folder', '--dir', SHAPES, '--size', '4by5'], /--size must be WIDTHxHEIGHT/],
      [['info', 'folder', '--dir', SHAPES, '--channels', '4'], /--channels must be 1 or 3/],
      [['info', 'cifar10', '--size', '8x8'], /apply to the folder data set only/],
    ] as const) {
      const err = await command.run([...argv]).catch((e: unknown) => e);
      expect(err, argv.join(' ')).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(message);
    }
  });
});
