import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../compiler/cli/command.ts';
import { command } from '../../compiler/cli/commands/info.ts';
import { buildGraph, parseArchId, parseShape3 } from '../../compiler/graph/arch.ts';
import { initParams, resnet } from '../../compiler/graph/builders.ts';
import { countGraph } from '../../compiler/graph/count.ts';
import { exportOnnx } from '../../compiler/onnx/export.ts';
import { TestRng } from '../nn/test-rng.ts';

async function runInfo(argv: string[]): Promise<string> {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    await command.run(argv);
    return log.mock.calls.map((c) => c.join(' ')).join('\n');
  } finally {
    log.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('facet info', () => {
  it('prints the layer table and the catro.md totals for ResNet-20 option A on 28×28×1', async () => {
    const out = await runInfo(['--arch', 'resnet20', '--input', '28x28x1', '--shortcut', 'A']);
    const lines = out.split('\n');
    expect(lines[0]).toBe('resnet20-w1-A-gap');
    expect(lines.find((l) => l.startsWith('s2b0.conv1 '))).toMatch(/conv\s+14×14×32\s+903,168\s+4,608$/);
    expect(lines.find((l) => l.startsWith('s2b0.short '))).toMatch(/padshortcut\s+14×14×32$/);
    expect(out).toMatch(/total: 30,821,248 MACs \(30\.82M\)/);
    expect(out).toContain('feature: s3b2.relu');
    expect(lines.at(-1)).toBe('prunable (CATRO, inner channels): s1b0.conv1, s1b1.conv1, s1b2.conv1, s2b0.conv1, s2b1.conv1, s2b2.conv1, s3b0.conv1, s3b1.conv1, s3b2.conv1');
  });

  it('--json gives the same numbers as countGraph', async () => {
    const out = JSON.parse(await runInfo(['--arch', 'resnet56', '--shortcut', 'A', '--json']));
    expect(out.macs).toBe(125_485_696);
    expect(out.params).toBe(853_018);
    expect(out.layers.length).toBe(countGraph(buildGraph({ arch: 'resnet56', input: [32, 32, 3], classes: 10, shortcut: 'A' })).perLayer.length);
  });

  it('honours width, classes and head', async () => {
    const out = JSON.parse(await runInfo(['--arch', 'resnet32', '--width', '0.5', '--classes', '4', '--head', 'pool2x2', '--json']));
    expect(out.arch).toBe('resnet32-w0.5-proj-pool2x2');
    const fc = out.layers.find((l: { name: string }) => l.name === 'fc');
    expect(fc).toMatchObject({ shape: [4], macs: 2 * 2 * 32 * 4, params: 2 * 2 * 32 * 4 + 4 });
  });

  it('reads a graph JSON (e.g. a pruned model) and summarises an exported ONNX file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'facet-info-'));
    try {
      const g = resnet({ depth: 8, input: [16, 16, 1], classes: 3, shortcut: 'A' });
      const conv = g.layers.find((l) => l.name === 's1b0.conv1')!;
      if (conv.kind === 'conv') conv.filters = 5; // as a pruner would
      writeFileSync(join(dir, 'g.json'), JSON.stringify(g));
      const out = JSON.parse(await runInfo(['--graph', join(dir, 'g.json'), '--json']));
      expect(out.macs).toBe(countGraph(g).macs);
      expect(out.layers.find((l: { name: string }) => l.name === 's1b0.conv1').shape).toEqual([16, 16, 5]);
      writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...g, output: 'nope' }));
      await expect(runInfo(['--graph', join(dir, 'bad.json')])).rejects.toThrow(/--graph .*bad\.json: graph .*output "nope"/);
      const onnx = join(dir, 'm.onnx');
      writeFileSync(onnx, exportOnnx(g, initParams(g, new TestRng(1)), { labels: ['x', 'y', 'z'], classes: [3, 1, 2], mean: [0.5], std: [0.5] }));
      const text = await runInfo(['--onnx', onnx]);
      expect(text).toMatch(/ONNX IR 8, opset 17, producer facet/);
      expect(text).toContain('facet.labels: ["x","y","z"]');
      expect(text).toMatch(/ops: Conv×7, Relu×7, Add×3, Slice×2, Pad×2, GlobalAveragePool×1, Flatten×1, Gemm×1/);
      await expect(runInfo(['--onnx', join(dir, 'g.json')])).rejects.toThrow(/--onnx .*g\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('turns bad flags into usage errors that name the flag', async () => {
    await expect(runInfo([])).rejects.toThrow(UsageError);
    await expect(runInfo(['--arch', 'resnet20', '--onnx', 'x.onnx'])).rejects.toThrow(/exactly one of/);
    await expect(runInfo(['--arch', 'resnet21'])).rejects.toThrow(/6n\+2/);
    await expect(runInfo(['--arch', 'resnet20', '--input', '28x28'])).rejects.toThrow(/--input must look like HxWxC/);
    await expect(runInfo(['--arch', 'resnet20', '--classes', '2.5'])).rejects.toThrow(/--classes must be a positive integer/);
    await expect(runInfo(['--arch', 'resnet20', '--shortcut', 'B'])).rejects.toThrow(/--shortcut must be A or projection/);
    await expect(runInfo(['--arch', 'vgg11', '--input', '28x28x1'])).rejects.toThrow(/does not fit/);
    await expect(runInfo(['--arch', 'resnet20', '--bogus'])).rejects.toThrow(UsageError);
  });
});

describe('arch specs', () => {
  it('parses shapes and builds VGG presets', () => {
    expect(parseShape3('32×32×3')).toEqual([32, 32, 3]);
    expect(() => parseShape3('0x3x3')).toThrow(/HxWxC/);
    const g = buildGraph({ arch: 'vgg11', input: [32, 32, 3], classes: 10 });
    expect(g.arch).toBe('vgg11-w1-gap');
    expect(g.layers.filter((l) => l.kind === 'conv').length).toBe(8);
    expect(() => buildGraph({ arch: 'vgg12', input: [32, 32, 3], classes: 10 })).toThrow(/unknown VGG depth/);
    expect(() => buildGraph({ arch: 'vgg11', input: [32, 32, 3], classes: 10, shortcut: 'A' })).toThrow(/no residual/);
    expect(() => buildGraph({ arch: 'mobilenet', input: [32, 32, 3], classes: 10 })).toThrow(/unknown arch "mobilenet"/);
  });

  it('parseArchId inverts the builders\' arch ids', () => {
    const specs = [
      { arch: 'resnet20', width: 1, shortcut: 'A' as const, head: 'gap' },
      { arch: 'resnet56', width: 0.5, shortcut: 'projection' as const, head: 'pool2x2' },
      { arch: 'vgg11', width: 0.25, head: 'flatten' },
      { arch: 'vgg-small', width: 1, head: 'gap' },
    ];
    for (const spec of specs) {
      const g = buildGraph({ ...spec, input: [32, 32, 3], classes: 10 });
      expect(parseArchId(g.arch)).toEqual(spec);
    }
    expect(() => parseArchId('vgg6-w1-gap')).toThrow(/graph JSON/);
  });
});
