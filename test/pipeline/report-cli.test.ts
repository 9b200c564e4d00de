import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { command } from '../../compiler/cli/commands/compile.ts';
import { initParams, resnet } from '../../compiler/graph/builders.ts';
import { exportOnnx } from '../../compiler/onnx/export.ts';
import { sha256File } from '../../compiler/pipeline/cache.ts';
import { parseCompileConfig } from '../../compiler/pipeline/config.ts';
import { renderReportHtml, REPORT_SCHEMA, type Report } from '../../compiler/pipeline/report.ts';
import { loadCompileData } from '../../compiler/pipeline/stages.ts';
import { publishFullCheckpoint, type SubtaskOutcome } from '../../compiler/pipeline/subtasks.ts';
import { initBackend } from '../../compiler/tf/backend.ts';
import { writeParams } from '../../compiler/train/loop.ts';
import { MANIFEST_SCHEMA_ID, parseManifest } from '../../shared/manifest.ts';
import { Rng } from '../../shared/rng.ts';
import { tempDirs } from './helpers/temp.ts';
import { tinyConfig, tinyData } from './helpers/tiny.ts';

const temp = tempDirs();
afterAll(temp.cleanup);
beforeAll(async () => {
  await initBackend('cpu');
});

/** An IDX file (the MNIST format): big-endian magic, dimensions, then the bytes, gzipped. */
function idx(magic: number, dims: number[], bytes: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return gzipSync(Buffer.concat([header, bytes]));
}

/** tiny.ts's images as MNIST files in `dataDir`, and its config (small subtask tuning) reading them. */
async function writeTinyCompile(configFile: string, dataDir: string): Promise<void> {
  const data = tinyData();
  for (const [prefix, split] of [['train', data.train], ['t10k', data.test]] as const) {
    await writeFile(join(dataDir, `${prefix}-images-idx3-ubyte.gz`), idx(0x803, [split.count, split.height, split.width], split.images));
    await writeFile(join(dataDir, `${prefix}-labels-idx1-ubyte.gz`), idx(0x801, [split.count], Uint8Array.from(split.labels)));
  }
  const json = JSON.parse(JSON.stringify(tinyConfig())) as Record<string, any>;
  json.dataset.dir = dataDir;
  json.subtaskTuning = { calibrationPerClass: 4, recalibrationImages: 16, epochs: 1, batchSize: 8 };
  await writeFile(configFile, JSON.stringify(json));
}

describe('facet compile --subtask: report', () => {
  it('adds the subtask outcomes to report.json, keeps earlier ones, and renders report.html again with them', async () => {
    const dir = await temp.make('facet-report-cli-');
    const dataDir = await temp.make('facet-report-cli-data-');
    const configFile = join(dir, 'tiny.json');
    await writeTinyCompile(configFile, dataDir);
    const config = parseCompileConfig(JSON.parse(await readFile(configFile, 'utf8')), configFile);
    const { test } = await loadCompileData(config);

    // A published full model (what `facet compile` leaves beside its manifest).
    const graph = resnet({ depth: 8, width: 1, input: [8, 8, 1], classes: test.classNames.length, shortcut: 'projection', head: 'gap' });
    const params = initParams(graph, new Rng(2));
    writeParams(join(dir, 'src.ckpt'), graph.arch, params, 0, null);
    await publishFullCheckpoint(dir, graph, join(dir, 'src.ckpt'));
    const onnx = exportOnnx(graph, params, { labels: test.classNames, mean: [0.3], std: [0.3] });
    await writeFile(join(dir, 'full.onnx'), onnx);
    const fullEntry = {
      id: 'full', subtask: null, file: 'full.onnx',
      classes: test.classNames.map((label, index) => ({ index, label })),
      input: { name: 'input', layout: 'NCHW' as const, height: 8, width: 8, channels: 1 as const, mean: [0.3], std: [0.3] },
      output: 'logits', macs: 1, params: 1, bytes: onnx.length, sha256: await sha256File(join(dir, 'full.onnx')), accuracy: null, latencyMs: null, configHash: 'x',
    };
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(parseManifest({ schema: MANIFEST_SCHEMA_ID, dataset: 'mnist', labels: test.classNames, createdAt: 'now', compilerVersion: '0', models: [fullEntry] })));

    // The report of the earlier compile, with one subtask compiled then.
    const s = { clean: 0.9, jpeg: 0.8, blur: 0.8, awgn: 0.8, saltpepper: 0.8, degradedMean: 0.8, samples: 10 };
    const earlier: SubtaskOutcome = { name: 'earlier', classes: [0, 2], labels: [test.classNames[0]!, test.classNames[2]!], macs: { full: 100, pruned: 50 }, params: { full: 10, pruned: 5 }, restricted: s, catro: { before: s, after: s }, seconds: { prune: 1, fineTune: 1, total: 2 } };
    const report: Report = { schema: REPORT_SCHEMA, config: 'tiny', dataset: 'mnist', createdAt: 'then', quick: true, samples: 10, rows: [], stages: [], wallMs: 1, notes: [], subtasks: [earlier] };
    await writeFile(join(dir, 'report.json'), JSON.stringify(report));
    await writeFile(join(dir, 'report.html'), renderReportHtml({ ...report, subtasks: [] }));

    await command.run(['--config', configFile, '--from', dir, '--cache-dir', join(dir, 'cache'), '--threads', '1', '--quick', '--subtask', 'right=1,3', '--keep', '0.5']);

    const written = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as Report;
    expect(written.subtasks!.map((o) => o.name)).toEqual(['earlier', 'right']);
    const right = written.subtasks![1]!;
    expect(right.classes).toEqual([1, 3]);
    // --keep 0.5 halves every block's inner channels: more MACs than the default 25% budget would leave.
    expect(right.macs.pruned / right.macs.full).toBeGreaterThan(0.3);
    expect(right.macs.pruned).toBeLessThan(right.macs.full);
    expect(written.createdAt).toBe('then');
    const html = await readFile(join(dir, 'report.html'), 'utf8');
    expect(html).toBe(renderReportHtml(written));
    expect(html).toContain('<tr data-subtask="earlier">');
    expect(html).toContain(`<tr data-subtask="right"><th>right</th><td>${right.labels.join(', ')}</td><td>${right.macs.pruned.toLocaleString('en')}</td>`);
    expect(html).toMatch(/<circle data-subtask="right" data-method="catro"/);
  }, 120_000);
});
