import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeFixtureModels } from '../../scripts/make-fixture-models.ts';
import { FIXTURE_MODELS } from './helpers.ts';

describe('fixture models', () => {
  it('are reproducible: regenerating gives the committed manifest and files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'facet-fixture-'));
    try {
      const manifest = makeFixtureModels(dir);
      const stale = 'the committed fixtures are stale; run: npx tsx scripts/make-fixture-models.ts';
      expect(manifest, stale).toEqual(JSON.parse(readFileSync(join(FIXTURE_MODELS, 'manifest.json'), 'utf8')));
      for (const m of manifest.models) expect(readFileSync(join(dir, m.file)).equals(readFileSync(join(FIXTURE_MODELS, m.file))), `${m.file}: ${stale}`).toBe(true);
      // Subtask models are cheaper than the full model, so model choice has something to choose.
      const [full, tops, shoes] = manifest.models;
      expect(tops!.macs).toBeLessThan(full!.macs);
      expect(shoes!.macs).toBeLessThan(tops!.macs);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
