/**
 * Test fixture models for the edge service: a small full Fashion-MNIST model and two subtask
 * models ("tops", "shoes") with random but fixed weights, built with the project's own graph
 * builders and ONNX exporter, written with a valid manifest to test/fixtures/edge/models/.
 * Deterministic: the same seed gives byte-identical files (the test checks the sha256s).
 *
 *   npx tsx scripts/make-fixture-models.ts [outDir]
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { vgg, initParams } from '../compiler/graph/builders.ts';
import { countGraph } from '../compiler/graph/count.ts';
import { exportOnnx } from '../compiler/onnx/export.ts';
import { DATASET_LABELS } from '../shared/labels.ts';
import { MANIFEST_SCHEMA_ID, parseManifest, type Manifest, type ModelEntry } from '../shared/manifest.ts';
import { Rng } from '../shared/rng.ts';

const LABELS = DATASET_LABELS['fashion-mnist'];
const MEAN = [0.286];
const STD = [0.353];

export interface FixtureSpec {
  id: string;
  subtask: string | null;
  classes: number[];
  stages: (number | 'M')[];
  seed: number;
}

export const FIXTURE_SPECS: FixtureSpec[] = [
  { id: 'full', subtask: null, classes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], stages: [8, 'M', 16, 'M'], seed: 1 },
  // T-shirt/top, Pullover, Coat, Shirt
  { id: 'tops', subtask: 'tops', classes: [0, 2, 4, 6], stages: [6, 'M', 8, 'M'], seed: 2 },
  // Sandal, Sneaker, Ankle boot
  { id: 'shoes', subtask: 'shoes', classes: [5, 7, 9], stages: [4, 'M', 8, 'M'], seed: 3 },
];

function writeAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * One fixture model: its ONNX bytes and its manifest entry but for the fields that come from the
 * bytes (file, bytes, sha256), the shape compiler/pipeline/publish.ts commits. Tests use it to
 * publish a new subtask into a models folder a server is serving.
 */
export function fixtureModel(spec: FixtureSpec): { entry: Omit<ModelEntry, 'file' | 'bytes' | 'sha256'>; onnx: Uint8Array } {
  const graph = vgg({ stages: spec.stages, input: [28, 28, 1], classes: spec.classes.length, head: 'gap' });
  const params = initParams(graph, new Rng(spec.seed));
  const labels = spec.classes.map((i) => LABELS[i]!);
  const onnx = exportOnnx(graph, params, { labels, mean: MEAN, std: STD, classes: spec.classes });
  const { macs, params: count } = countGraph(graph);
  const entry = {
    id: spec.id,
    subtask: spec.subtask,
    classes: spec.classes.map((index) => ({ index, label: LABELS[index]! })),
    input: { name: 'input', layout: 'NCHW' as const, height: 28, width: 28, channels: 1 as const, mean: MEAN, std: STD },
    output: 'logits',
    macs,
    params: count,
    accuracy: null,
    latencyMs: null,
    configHash: `fixture-seed-${spec.seed}`,
  };
  return { entry, onnx };
}

export function makeFixtureModels(outDir: string): Manifest {
  mkdirSync(outDir, { recursive: true });
  const models: ModelEntry[] = FIXTURE_SPECS.map((spec) => {
    const { entry, onnx } = fixtureModel(spec);
    const file = `${spec.id}.onnx`;
    writeAtomic(join(outDir, file), onnx);
    return { ...entry, file, bytes: onnx.length, sha256: createHash('sha256').update(onnx).digest('hex') };
  });
  const manifest = parseManifest(
    {
      schema: MANIFEST_SCHEMA_ID,
      dataset: 'fashion-mnist',
      labels: LABELS,
      createdAt: '2026-11-26T00:00:00Z',
      compilerVersion: 'fixture',
      models,
    },
    'fixture manifest',
  );
  writeAtomic(join(outDir, 'manifest.json'), new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n'));
  return manifest;
}

if (process.argv[1]?.endsWith('make-fixture-models.ts')) {
  const out = process.argv[2] ?? 'test/fixtures/edge/models';
  const manifest = makeFixtureModels(out);
  for (const m of manifest.models) console.log(`${out}/${m.file}: ${m.bytes} bytes, ${m.macs} MACs, ${m.params} params`);
}
