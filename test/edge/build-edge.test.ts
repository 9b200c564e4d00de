import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdge, inputsFile, ROOT, type BundleInputs } from '../../scripts/build-edge.ts';
import { staleReason } from '../../scripts/serve-node.mjs';
import { fixtureApp, FIXTURE_MODELS, image, servingUrl } from './helpers.ts';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

// The bundle finds node_modules from its own path, so it is built inside the repository.
const outDir = join(ROOT, 'dist', `.test-${process.pid}`);
const out = join(outDir, 'edge-node.mjs');
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe('Node edge bundle (scripts/build-edge.ts)', () => {
  beforeAll(async () => {
    await buildEdge(out);
  }, 60_000);

  it('records the sha256 of every file it bundled, and counts as fresh right after the build', () => {
    const record = JSON.parse(readFileSync(inputsFile(out), 'utf8')) as BundleInputs;
    const paths = Object.keys(record.inputs);
    expect(paths).toEqual(expect.arrayContaining(['edge/node.ts', 'edge/app.ts', 'edge/wasm-files.ts', 'shared/manifest.ts', 'shared/preprocess.ts']));
    expect(paths.some((p) => p.startsWith('node_modules/hono/'))).toBe(true);
    expect(paths.some((p) => p.startsWith('node_modules/onnxruntime-web/'))).toBe(true);
    for (const p of ['edge/node.ts', 'shared/manifest.ts']) expect(record.inputs[p]).toBe(sha256(join(ROOT, p)));
    expect(staleReason(out)).toBeNull();
  });

  it('serves with plain node (no tsx) and answers as the app does in-process', async () => {
    const child = spawn(process.execPath, [out, '--port', '0', '--models', FIXTURE_MODELS], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FACET_API_KEY: '', NODE_OPTIONS: '' } });
    try {
      const url = await servingUrl(child, 'bundle').url;
      const request = () => new Request(`${url}/v1/classify?subtask=tops&top_k=4`, { method: 'POST', body: image('shirt.png'), headers: { 'content-type': 'image/png' } });
      const res = await fetch(request());
      expect(res.status).toBe(200);
      const { app } = await fixtureApp();
      const expected = (await (await app.fetch(request())).json()) as Record<string, unknown>;
      const got = (await res.json()) as Record<string, unknown>;
      expect(got.predictions).toHaveLength(4);
      // Everything but the timings.
      expect({ ...got, timing: undefined }).toEqual({ ...expected, timing: undefined });
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }, 60_000);

  it('serve-node.mjs starts the bundle: a startup failure is reported as by tsx edge/node.ts', () => {
    const run = spawnSync(process.execPath, ['scripts/serve-node.mjs', '--port', '0', '--models', '/nonexistent/models'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/facet edge: startup failed: cannot read the model manifest at \/nonexistent\/models: .*ENOENT/);
  }, 60_000);
});

describe('bundle freshness (scripts/serve-node.mjs)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'facet-fresh-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const bundle = join(dir, 'dist', 'b.mjs');
  const setup = (inputs: Record<string, string>) => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, 'dist'), { recursive: true });
    mkdirSync(join(dir, 'src'));
    for (const [p, text] of Object.entries(inputs)) writeFileSync(join(dir, p), text);
    writeFileSync(bundle, '// bundle');
    const record: BundleInputs = { schema: 'facet.edge-bundle-inputs/1', inputs: Object.fromEntries(Object.keys(inputs).map((p) => [p, sha256(join(dir, p))])) };
    writeFileSync(inputsFile(bundle), JSON.stringify(record));
  };

  it('is fresh while every input has its recorded content', () => {
    setup({ 'src/a.ts': 'export const a = 1;', 'src/b.ts': 'export const b = 2;' });
    expect(staleReason(bundle, dir)).toBeNull();
    // Touching a file without changing it does not force a rebuild.
    writeFileSync(join(dir, 'src/a.ts'), 'export const a = 1;');
    expect(staleReason(bundle, dir)).toBeNull();
  });

  it('names the input that changed or is gone, and a missing bundle or record', () => {
    setup({ 'src/a.ts': 'export const a = 1;', 'src/b.ts': 'export const b = 2;' });
    writeFileSync(join(dir, 'src/b.ts'), 'export const b = 3;');
    expect(staleReason(bundle, dir)).toBe('src/b.ts changed');
    rmSync(join(dir, 'src/b.ts'));
    expect(staleReason(bundle, dir)).toBe('src/b.ts is gone');
    setup({ 'src/a.ts': 'x' });
    writeFileSync(inputsFile(bundle), '{"schema":"something else"}');
    expect(staleReason(bundle, dir)).toMatch(/b\.mjs\.inputs\.json: not an inputs record/);
    rmSync(inputsFile(bundle));
    expect(staleReason(bundle, dir)).toMatch(/^missing: .*b\.mjs\.inputs\.json$/);
    rmSync(bundle);
    expect(staleReason(bundle, dir)).toMatch(/^missing: .*b\.mjs$/);
  });
});
