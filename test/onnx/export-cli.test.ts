import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../compiler/cli/command.ts';
import { command } from '../../compiler/cli/commands/export.ts';
import { initParams, resnet } from '../../compiler/graph/builders.ts';
import { predict } from '../../compiler/nn/forward.ts';
import { readOnnxSummary } from '../../compiler/onnx/export.ts';
import { writeCheckpoint } from '../../compiler/train/checkpoint.ts';
import { PARAMS_FORMAT } from '../../compiler/train/loop.ts';
import { TestRng } from '../nn/test-rng.ts';

const dir = mkdtempSync(join(tmpdir(), 'facet-export-'));
const graph = resnet({ depth: 8, width: 0.5, input: [12, 12, 1], classes: 4, shortcut: 'A', head: 'pool2x2' });
const params = initParams(graph, new TestRng(21));
for (const [k, t] of params) if (k.endsWith('/mean')) t.data.fill(0.1);
const ckpt = join(dir, 'best.ckpt');

beforeAll(async () => {
  await tf.setBackend('cpu');
  writeCheckpoint(ckpt, { meta: { format: PARAMS_FORMAT, arch: graph.arch, epoch: 3, valAccuracy: 0.5 }, tensors: params });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(argv: string[]): Promise<string> {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    await command.run(argv);
    return log.mock.calls.map((c) => c.join(' ')).join('\n');
  } finally {
    log.mockRestore();
  }
}

const base = (out: string) => ['--checkpoint', ckpt, '--out', out, '--input', '12x12x1', '--mean', '0.286', '--std', '0.353'];

describe('facet export', () => {
  it('rebuilds the graph from the checkpoint arch id and writes a model that matches tfjs', async () => {
    const out = join(dir, 'shoes.onnx');
    const msg = await run([...base(out), '--dataset', 'fashion-mnist', '--subset', '5,7,9,8']);
    expect(msg).toMatch(/shoes\.onnx: resnet8-w0\.5-A-pool2x2, 4 classes, \d+ bytes/);
    const bytes = readFileSync(out);
    const s = readOnnxSummary(bytes);
    expect(JSON.parse(s.metadata['facet.labels']!)).toEqual(['Sandal', 'Sneaker', 'Ankle boot', 'Bag']);
    expect(JSON.parse(s.metadata['facet.classes']!)).toEqual([5, 7, 9, 8]);
    expect(JSON.parse(s.metadata['facet.mean']!)).toEqual([0.286]);
    const x = new TestRng(22).uniform(2 * 144, -1, 1);
    const want = await predict(graph, params, tf.tensor4d(x, [2, 12, 12, 1])).data();
    const session = await ort.InferenceSession.create(bytes);
    const got = (await session.run({ input: new ort.Tensor('float32', x, [2, 1, 12, 12]) })).logits!.data as Float32Array;
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(1e-4);
    await session.release();
  });

  it('accepts a graph JSON and explicit labels', async () => {
    const g = join(dir, 'graph.json');
    writeFileSync(g, JSON.stringify(graph));
    const out = join(dir, 'g.onnx');
    await run([...base(out), '--graph', g, '--labels', 'a,b,c,d']);
    expect(JSON.parse(readOnnxSummary(readFileSync(out)).metadata['facet.labels']!)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('names the problem for bad flags, a mismatched arch and a wrong class count', async () => {
    const out = join(dir, 'bad.onnx');
    await expect(run(['--out', out])).rejects.toThrow(/--checkpoint is required/);
    await expect(run([...base(out)])).rejects.toThrow(/labels are required/);
    await expect(run([...base(out), '--dataset', 'fashion-mnist', '--subset', '1,10'])).rejects.toThrow(/--subset: 10 is not a class index/);
    await expect(run([...base(out), '--dataset', 'nope'])).rejects.toThrow(/--dataset: unknown data set "nope"/);
    await expect(run([...base(out), '--labels', 'a,b,c,d', '--arch', 'resnet20'])).rejects.toThrow(/holds a resnet8-w0\.5-A-pool2x2 model.*resnet20-w1-proj-gap/);
    await expect(run([...base(out), '--labels', 'a,b,c', '--mean', '0,0'])).rejects.toThrow(UsageError);
    await expect(run([...base(out), '--labels', 'a,b,c'])).rejects.toThrow(/the model has 4 outputs, but 3 labels were given \(--labels\)/);
    await expect(run([...base(out), '--dataset', 'mnist'])).rejects.toThrow(/4 outputs, but 10 labels .*--dataset\/--subset/);
    const g = join(dir, 'graph3.json');
    writeFileSync(g, JSON.stringify(resnet({ depth: 8, width: 0.5, input: [12, 12, 1], classes: 3, shortcut: 'A', head: 'pool2x2' })));
    await expect(run([...base(out), '--graph', g, '--labels', 'a,b,c'])).rejects.toThrow(/"fc\/kernel" has shape \[128,4\], expected \[128,3\]/);
    await expect(run([...base(join(dir, 'x.bin')), '--labels', 'a'])).rejects.toThrow(/--out must end in \.onnx/);
  });
});
