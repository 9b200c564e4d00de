import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FIXTURE_MODELS } from './helpers.ts';

const MiB = 2 ** 20;

describe('Worker bundle', () => {
  it('builds with wrangler deploy --dry-run and fits Workers limits', () => {
    const out = mkdtempSync(join(tmpdir(), 'facet-bundle-'));
    try {
      const wrangler = createRequire(import.meta.url).resolve('wrangler/bin/wrangler.js');
      const log = execFileSync(process.execPath, [wrangler, 'deploy', '--dry-run', '--outdir', out, '--assets', FIXTURE_MODELS], {
        env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
        encoding: 'utf8',
        timeout: 120_000,
      });
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
      rmSync(out, { recursive: true, force: true });
    }
  });
});
