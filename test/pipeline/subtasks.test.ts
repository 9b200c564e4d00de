import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initParams, resnet } from '../../compiler/graph/builders.ts';
import { exportOnnx } from '../../compiler/onnx/export.ts';
import { sha256File } from '../../compiler/pipeline/cache.ts';
import { parseCompileConfig } from '../../compiler/pipeline/config.ts';
import { publishSubtasks } from '../../compiler/pipeline/publish.ts';
import { FULL_CKPT, FULL_GRAPH, loadFullModel, publishFullCheckpoint, readOutcome, runSubtasks, withoutExamplesOf } from '../../compiler/pipeline/subtasks.ts';
import { gather } from '../../compiler/data/split.ts';
import { writeParams } from '../../compiler/train/loop.ts';
import { testEngine } from '../engine/engines.ts';
import { MANIFEST_SCHEMA_ID, parseManifest } from '../../shared/manifest.ts';
import { Rng } from '../../shared/rng.ts';
import { tinyConfig, tinyData } from './helpers/tiny.ts';

describe('subtask stages and manifest merge (--from a published full model)', () => {
  it('compiles a subtask from a published full model, merges it into the manifest, and a rerun is cached', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'facet-subtasks-'));
    const data = tinyData();
    const graph = resnet({ depth: 8, width: 1, input: [8, 8, 1], classes: 4, shortcut: 'projection', head: 'gap' });
    const params = initParams(graph, new Rng(2));
    const tmpCkpt = join(dir, 'src.ckpt');
    writeParams(tmpCkpt, graph.arch, params, 0, null);
    await publishFullCheckpoint(dir, graph, tmpCkpt);
    const onnx = exportOnnx(graph, params, { labels: data.test.classNames, mean: [0.3], std: [0.3] });
    await writeFile(join(dir, 'full.onnx'), onnx);
    const fullEntry = {
      id: 'full', subtask: null, file: 'full.onnx',
      classes: data.test.classNames.map((label, index) => ({ index, label })),
      input: { name: 'input', layout: 'NCHW' as const, height: 8, width: 8, channels: 1 as const, mean: [0.3], std: [0.3] },
      output: 'logits', macs: 1, params: 1, bytes: onnx.length, sha256: await sha256File(join(dir, 'full.onnx')), accuracy: null, latencyMs: null, configHash: 'x',
    };
    // An earlier subtask whose file is gone must be dropped; one that is intact must stay.
    await writeFile(join(dir, 'kept.onnx'), onnx);
    const kept = { ...fullEntry, id: 'kept', subtask: 'kept', file: 'kept.onnx', classes: [{ index: 0, label: 'top-left' }] };
    const gone = { ...fullEntry, id: 'gone', subtask: 'gone', file: 'gone.onnx', classes: [{ index: 1, label: 'top-right' }] };
    const manifest = { schema: MANIFEST_SCHEMA_ID, dataset: 'quadrants', labels: data.test.classNames, createdAt: 'now', compilerVersion: '0', models: [fullEntry, kept, gone] };
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(parseManifest(manifest)));

    const base = tinyConfig();
    const config = parseCompileConfig(
      { ...base, subtasks: [{ name: 'right', classes: ['top-right', 'bottom-right'], flopsFraction: 0.5 }], subtaskTuning: { calibrationPerClass: 4, recalibrationImages: 16, epochs: 1, batchSize: 8 } },
      'test',
    );
    const full = await loadFullModel(join(dir, FULL_GRAPH), join(dir, FULL_CKPT));
    const lines: string[] = [];
    const opts = { config, data, full, cacheDir: join(dir, 'cache'), baselines: false, quick: true, log: (l: string) => lines.push(l), engine: await testEngine('ort') };
    const results = await runSubtasks(opts);
    const outcome = await readOutcome(results.get('right')!);
    expect(outcome.classes).toEqual([1, 3]);
    expect(outcome.macs.pruned).toBeLessThan(0.56 * outcome.macs.full);
    expect(outcome.catro.after.clean).not.toBeNull();
    // Without --baselines only the model that ships is evaluated, after fine-tuning.
    expect(outcome.restricted).toBeUndefined();
    expect(outcome.catro.before).toBeUndefined();
    expect(outcome.l1).toBeUndefined();
    expect(lines.some((l) => /^\[subtask-right\] pruned .*, 1 model evaluated in/.test(l))).toBe(true);

    await publishSubtasks(dir, 'hash', results, (l) => lines.push(l));
    const merged = parseManifest(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')));
    expect(merged.models.map((m) => m.id)).toEqual(['full', 'kept', 'right']);
    const right = merged.models.find((m) => m.id === 'right')!;
    expect(right.classes).toEqual([{ index: 1, label: 'top-right' }, { index: 3, label: 'bottom-right' }]);
    expect(right.file).toBe(`right.${right.sha256.slice(0, 12)}.onnx`);
    expect(right.sha256).toBe(await sha256File(join(dir, right.file)));
    // The dropped entry's name was never there; the kept one's file stays; nothing else is left over.
    expect((await readdir(dir)).filter((f) => f.endsWith('.onnx')).sort()).toEqual(['full.onnx', 'kept.onnx', right.file].sort());
    expect(right.macs).toBe(outcome.macs.pruned);
    expect(lines.some((l) => l.includes('dropped subtask model gone'))).toBe(true);

    const again = await runSubtasks(opts);
    expect(again.get('right')!.cached).toBe(true);

    // With --baselines: before and after for CATRO, L1 and random; CATRO's model and figures unchanged.
    const compared = await readOutcome((await runSubtasks({ ...opts, baselines: true, cacheDir: join(dir, 'cache-baselines') })).get('right')!);
    for (const v of [compared.catro, compared.l1!, compared.random!]) {
      expect(v.before!.clean).not.toBeNull();
      expect(v.after.clean).not.toBeNull();
    }
    expect(compared.restricted!.clean).not.toBeNull();
    expect(compared.catro.after).toEqual(outcome.catro.after);

    // A layer name in keep ratios that the model does not have fails before any subtask runs.
    const typo = parseCompileConfig(
      { ...base, subtasks: [{ name: 'left', classes: [0, 2], flopsFraction: 0.5 }, { name: 'typo', classes: [1, 3], keepRatios: { 's1b0.conv2': 0.5 } }], subtaskTuning: { calibrationPerClass: 4, recalibrationImages: 16, epochs: 1, batchSize: 8 } },
      'test',
    );
    const typoLines: string[] = [];
    await expect(runSubtasks({ ...opts, config: typo, cacheDir: join(dir, 'cache-typo'), log: (l: string) => typoLines.push(l) })).rejects.toThrow(/subtask "typo": keep ratio given for "s1b0\.conv2", which is not a prunable layer \(prunable: s1b0\.conv1/);
    expect(typoLines).toEqual([]);
  });
});

describe('subtask training images', () => {
  it('"all" is every training example whose image and label are not a validation example', () => {
    const { train } = tinyData();
    const held = gather(train, [0, 5, 9]);
    const rest = withoutExamplesOf(train, held);
    expect(rest.count).toBe(train.count - 3);
    const px = train.height * train.width * train.channels;
    const keys = (d: typeof train) => Array.from({ length: d.count }, (_, i) => `${d.labels[i]}:${d.images.subarray(i * px, (i + 1) * px).join(',')}`);
    const restKeys = new Set(keys(rest));
    for (const k of keys(held)) expect(restKeys.has(k)).toBe(false);
    // The same image under another label is a different example.
    const relabelled = { ...held, labels: held.labels.map((l) => (l + 1) % train.classNames.length) };
    expect(withoutExamplesOf(train, relabelled).count).toBe(train.count - keys(train).filter((k) => new Set(keys(relabelled)).has(k)).length);
    expect(withoutExamplesOf(train, undefined)).toBe(train);
  });
});
