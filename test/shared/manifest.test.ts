import { describe, expect, it } from 'vitest';
import { DEGRADATION_KINDS, MANIFEST_SCHEMA_ID, parseManifest, type Manifest } from '../../shared/manifest.ts';

const LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress'];

function model(id: string, subtask: string | null, classes: number[]) {
  return {
    id,
    subtask,
    file: `${id}.onnx`,
    classes: classes.map((index) => ({ index, label: LABELS[index]! })),
    input: { name: 'input', layout: 'NCHW', height: 28, width: 28, channels: 1, mean: [0.286], std: [0.353] },
    output: 'logits',
    macs: 40_000_000,
    params: 270_000,
    bytes: 1_100_000,
    sha256: 'a'.repeat(64),
    accuracy: { clean: 0.92, jpeg: 0.85, blur: 0.7, awgn: 0.8, saltpepper: 0.83, degradedMean: 0.795, samples: 10_000 },
    latencyMs: 1.5,
    configHash: 'cfg123',
  };
}

function valid() {
  return {
    schema: MANIFEST_SCHEMA_ID,
    dataset: 'fashion-mnist',
    labels: [...LABELS],
    createdAt: '2026-11-26T10:00:00Z',
    compilerVersion: '0.1.0',
    models: [model('full', null, [0, 1, 2, 3]), model('tops', 'tops', [0, 2])],
  };
}

/** The error message parseManifest throws for a manifest changed by `edit`. */
function problems(edit: (m: ReturnType<typeof valid>) => void): string {
  const m = valid();
  edit(m);
  try {
    parseManifest(m, 'models/manifest.json');
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('manifest was accepted');
}

describe('manifest', () => {
  it('accepts a valid manifest and returns its data', () => {
    const m: Manifest = parseManifest(valid());
    expect(m.models.map((x) => x.id)).toEqual(['full', 'tops']);
    expect(m.models[1]!.classes[1]).toEqual({ index: 2, label: 'Pullover' });
    expect(DEGRADATION_KINDS).toEqual(['jpeg', 'blur', 'awgn', 'saltpepper']);
  });

  it('allows unmeasured accuracy and latency (null)', () => {
    const m = valid();
    m.models[1]!.accuracy = null as never;
    m.models[1]!.latencyMs = null as never;
    expect(parseManifest(m).models[1]!.accuracy).toBeNull();
  });

  it('names the source file and every problem with its path', () => {
    const msg = problems((m) => {
      m.models[1]!.sha256 = 'XYZ';
      m.models[0]!.macs = -1;
    });
    expect(msg).toMatch(/^models\/manifest\.json is not a valid Facet manifest:/);
    expect(msg).toContain('models.1.sha256: must be 64 lowercase hex digits');
    expect(msg).toMatch(/models\.0\.macs: /);
  });

  it('rejects a wrong schema id and unknown keys', () => {
    expect(problems((m) => (m.schema = 'facet.manifest/2' as never))).toMatch(/schema: /);
    expect(problems((m) => ((m as Record<string, unknown>).extra = 1))).toMatch(/extra/);
    expect(problems((m) => ((m.models[0]!.input as Record<string, unknown>).dtype = 'f32'))).toMatch(/models\.0\.input.*dtype/);
  });

  it('checks class references against the label list', () => {
    expect(problems((m) => (m.models[1]!.classes[0]!.label = 'Shirt'))).toContain('models.1.classes.0: class 0 "Shirt" does not match labels[0]');
    expect(problems((m) => m.models[1]!.classes.push({ index: 9, label: 'Ankle boot' }))).toContain('class 9 "Ankle boot" does not match labels[9]');
    expect(problems((m) => m.models[1]!.classes.push({ index: 2, label: 'Pullover' }))).toContain('models.1.classes.2: class 2 listed twice');
  });

  it('needs unique ids and exactly one full model', () => {
    expect(problems((m) => (m.models[1]!.id = 'full'))).toContain('models.1.id: duplicate model id "full"');
    expect(problems((m) => (m.models[1]!.subtask = null))).toContain('need exactly one full model (subtask null), found 2');
    expect(problems((m) => (m.models[0]!.subtask = 'all'))).toContain('found 0');
  });

  it('validates the input spec: channels, mean/std per channel, positive std, NCHW', () => {
    expect(problems((m) => (m.models[0]!.input.mean = [0.1, 0.2]))).toContain('mean and std need one entry per channel');
    expect(problems((m) => (m.models[0]!.input.channels = 2))).toMatch(/models\.0\.input\.channels/);
    expect(problems((m) => (m.models[0]!.input.std = [0]))).toMatch(/models\.0\.input\.std\.0/);
    expect(problems((m) => (m.models[0]!.input.layout = 'NHWC'))).toMatch(/models\.0\.input\.layout/);
  });

  it('keeps model files plain names in the manifest directory', () => {
    for (const file of ['../x.onnx', 'sub/x.onnx', 'x.ort', 'x.onnx.gz']) {
      expect(problems((m) => (m.models[0]!.file = file))).toContain('models.0.file: a plain .onnx file name');
    }
    expect(problems((m) => (m.models[0]!.id = 'Full Model'))).toMatch(/models\.0\.id: lowercase letters/);
  });

  it('bounds accuracies to [0, 1] and requires a positive sample count', () => {
    expect(problems((m) => (m.models[0]!.accuracy!.clean = 92))).toMatch(/models\.0\.accuracy\.clean/);
    expect(problems((m) => (m.models[0]!.accuracy!.samples = 0))).toMatch(/models\.0\.accuracy\.samples/);
  });

  it('needs at least two labels and one model', () => {
    expect(problems((m) => (m.labels = ['only']))).toMatch(/labels: /);
    expect(problems((m) => (m.models = []))).toMatch(/models: /);
  });
});
