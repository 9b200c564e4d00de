/** edge/watch-models.ts: what makes the Node, Bun and Deno servers check their models folder. */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { serverConfig } from '../../edge/node.ts';
import { watchModelsFolder } from '../../edge/watch-models.ts';

const dir = mkdtempSync(join(tmpdir(), 'facet-watch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('models folder watch', () => {
  it('checks when a manifest is renamed into the folder, as a publish does', async () => {
    const check = vi.fn(async () => undefined);
    const watch = watchModelsFolder(dir, check, { pollMs: 0 });
    try {
      expect(watch.watching).toBe(true);
      await new Promise((r) => setTimeout(r, 50));
      expect(check).not.toHaveBeenCalled();
      writeFileSync(join(dir, '.0123456789ab.tmp'), '{}');
      renameSync(join(dir, '.0123456789ab.tmp'), join(dir, 'manifest.json'));
      await vi.waitFor(() => expect(check).toHaveBeenCalled(), { timeout: 5000 });
    } finally {
      watch.close();
    }
  });

  it('checks periodically without a watch, and stops when closed', async () => {
    const check = vi.fn(async () => undefined);
    const watch = watchModelsFolder(dir, check, { watch: false, pollMs: 20 });
    expect(watch.watching).toBe(false);
    await vi.waitFor(() => expect(check.mock.calls.length).toBeGreaterThanOrEqual(3), { timeout: 5000 });
    watch.close();
    const calls = check.mock.calls.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(check.mock.calls.length).toBe(calls);
  });

  it('a folder that cannot be watched is said once, and the periodic check still runs', async () => {
    const warn = vi.fn();
    const check = vi.fn(async () => undefined);
    const watch = watchModelsFolder(join(dir, 'missing'), check, { pollMs: 20, warn });
    try {
      expect(watch.watching).toBe(false);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]![0]).toMatch(new RegExp(`cannot watch ${dir}/missing \\(.*ENOENT.*\\); new manifests are found by the check every 20 ms`));
      await vi.waitFor(() => expect(check).toHaveBeenCalled(), { timeout: 5000 });
    } finally {
      watch.close();
    }
  });

  it('FACET_RELOAD_POLL_MS and FACET_RELOAD_WATCH configure it; bad values are refused by name', async () => {
    const config = (env: Record<string, string>) => serverConfig([], env, () => true);
    expect((await config({})).reload).toEqual({ watch: true, pollMs: 5000 });
    expect((await config({ FACET_RELOAD_POLL_MS: '0', FACET_RELOAD_WATCH: '0' })).reload).toEqual({ watch: false, pollMs: 0 });
    await expect(config({ FACET_RELOAD_POLL_MS: '2s' })).rejects.toThrow('FACET_RELOAD_POLL_MS must be a whole number of milliseconds (0: no periodic check); got "2s"');
    await expect(config({ FACET_RELOAD_WATCH: 'yes' })).rejects.toThrow('FACET_RELOAD_WATCH must be 1 (watch the models folder) or 0 (do not); got "yes"');
  });
});
