import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_MODELS } from './helpers.ts';

describe('server startup', () => {
  it('stops with a clear message when the manifest fails validation', () => {
    const dir = mkdtempSync(join(tmpdir(), 'facet-badmanifest-'));
    try {
      cpSync(FIXTURE_MODELS, dir, { recursive: true });
      const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
      manifest.models[2].macs = -5;
      manifest.models[0].subtask = 'oops';
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'edge/node.ts', '--port', '0', '--models', dir], { encoding: 'utf8', timeout: 60_000 });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain(`facet edge: startup failed: ${dir}/manifest.json is not a valid Facet manifest:`);
      expect(run.stderr).toMatch(/models\.2\.macs: .*>=0/);
      expect(run.stderr).toMatch(/models: need exactly one full model \(subtask null\), found 0/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops with a clear message when the models folder has no manifest', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'edge/node.ts', '--port', '0', '--models', '/nonexistent/models'], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/startup failed: cannot read the model manifest at \/nonexistent\/models: .*ENOENT/);
  });
});
