import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commitModels, entryIntact, modelFileName, readManifest } from '../../compiler/pipeline/publish.ts';
import { MANIFEST_SCHEMA_ID, type Manifest, type ModelEntry } from '../../shared/manifest.ts';

const entry = (id: string): Omit<ModelEntry, 'file' | 'bytes' | 'sha256'> => ({
  id,
  subtask: id === 'full' ? null : id,
  classes: [{ index: 0, label: 'a' }, { index: 1, label: 'b' }],
  input: { name: 'input', layout: 'NCHW', height: 8, width: 8, channels: 1, mean: [0.5], std: [0.5] },
  output: 'logits',
  macs: 10,
  params: 10,
  accuracy: null,
  latencyMs: null,
  configHash: 'h',
});
const manifestOf = (models: ModelEntry[]): Manifest => ({ schema: MANIFEST_SCHEMA_ID, dataset: 'tiny', labels: ['a', 'b'], createdAt: 'now', compilerVersion: '0', models });
const bytes = (text: string) => new TextEncoder().encode(text);

describe('publishing a models directory (content-addressed files, the manifest commits)', () => {
  it('a failed commit leaves the previous set serving; the next one replaces it and removes what it no longer names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'facet-publish-'));
    await commitModels(dir, [{ entry: entry('full'), onnx: bytes('model v1') }, { entry: entry('tops'), onnx: bytes('tops v1') }], manifestOf);
    const v1 = (await readManifest(dir))!;
    expect(v1.models.map((m) => m.file)).toEqual([modelFileName('full', v1.models[0]!.sha256), modelFileName('tops', v1.models[1]!.sha256)]);

    // A manifest that fails validation is refused after the new file is written: the old set still serves.
    const broken = commitModels(dir, [{ entry: entry('full'), onnx: bytes('model v2') }], (entries) => manifestOf(entries.map((e) => ({ ...e, macs: -1 }))));
    await expect(broken).rejects.toThrow(/macs/);
    expect(await readManifest(dir)).toEqual(v1);
    for (const m of v1.models) expect(await entryIntact(dir, m)).toBe(true);

    // A writer killed mid-write leaves a temp file; other files in the directory are not the publisher's.
    await writeFile(join(dir, '.0123456789ab.tmp'), 'partial');
    await writeFile(join(dir, 'notes.txt'), 'mine');
    const written = await commitModels(dir, [{ entry: entry('full'), onnx: bytes('model v2') }], ([full]) => manifestOf([full!]));
    const v2 = (await readManifest(dir))!;
    expect(v2.models).toHaveLength(1);
    expect(await readFile(join(dir, v2.models[0]!.file), 'utf8')).toBe('model v2');
    expect(written).toEqual([join(dir, v2.models[0]!.file), join(dir, 'manifest.json')]);
    expect((await readdir(dir)).sort()).toEqual([v2.models[0]!.file, 'manifest.json', 'notes.txt'].sort());
  });
});
