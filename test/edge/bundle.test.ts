import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { commitModels, readManifest } from '../../compiler/pipeline/publish.ts';
import { FIXTURE_MODELS } from './helpers.ts';
import { BOTTOMS } from './new-subtask.ts';

const MiB = 2 ** 20;

describe('Worker bundle', () => {
  it('npm run deploy -- --dry-run builds a bundle within Workers limits, shipping the models folder as it is now (a new subtask in, a removed one out)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'facet-bundle-'));
    const out = join(tmp, 'out');
    const models = join(tmp, 'models');
    try {
      // How a new subtask reaches Workers: compile it into the folder (here: the compiler's
      // publish of a new model, and a subtask removed the same way), then deploy the folder.
      cpSync(FIXTURE_MODELS, models, { recursive: true });
      const before = (await readManifest(models))!;
      await commitModels(models, [BOTTOMS], ([bottoms]) => ({ ...before, models: [...before.models.filter((m) => m.id !== 'shoes'), bottoms!] }));
      const shipped = readdirSync(models).sort();
      expect(shipped).toEqual(['full.onnx', 'manifest.json', expect.stringMatching(/^bottoms\.[0-9a-f]{12}\.onnx$/), 'tops.onnx'].sort());

      // WRANGLER_LOG=debug makes wrangler list every asset it would upload.
      const run = spawnSync('npm', ['run', '--silent', 'deploy', '--', '--dry-run', '--outdir', out], {
        env: { ...process.env, FACET_MODELS: models, WRANGLER_LOG: 'debug', NO_COLOR: '1' },
        encoding: 'utf8',
        timeout: 120_000,
      });
      const log = run.stdout + run.stderr;
      expect(run.status, log).toBe(0);
      expect(log).toContain(`Read ${shipped.length} files from the assets directory ${models}`);
      const assets = [...log.matchAll(/^\/([^\s/]+)$/gm)].map((m) => m[1]).sort();
      expect(assets).toEqual(shipped);
      expect(log).not.toContain('serving the test fixture models');

      const files = readdirSync(out).filter((f) => !f.endsWith('.map') && f !== 'README.md');
      // The script and the three precompiled wasm modules (ORT, PNG, JPEG) are the upload.
      expect(files.filter((f) => f.endsWith('.wasm'))).toHaveLength(3);
      expect(files).toContain('worker.js');
      const raw = files.reduce((s, f) => s + statSync(join(out, f)).size, 0);
      const gzip = files.reduce((s, f) => s + gzipSync(readFileSync(join(out, f)), { level: 9 }).length, 0);
      console.log(`worker bundle: ${(raw / MiB).toFixed(2)} MiB raw, ${(gzip / MiB).toFixed(2)} MiB gzip (${files.join(', ')})`);
      // Workers: 64 MiB uncompressed today; the older Paid limit was 10 MiB after gzip.
      expect(raw).toBeLessThan(64 * MiB);
      expect(gzip).toBeLessThan(10 * MiB);
      expect(log).toMatch(/Total Upload: [\d.,]+ KiB \/ gzip: [\d.,]+ KiB/);
      // workerd cannot compile wasm from bytes: ORT must not try to fetch or import its .wasm/.mjs.
      const worker = readFileSync(join(out, 'worker.js'), 'utf8');
      expect(worker).not.toMatch(/import\(["'`][^"'`]*ort-wasm[^"'`]*\.mjs/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
