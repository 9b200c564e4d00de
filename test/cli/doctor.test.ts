import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../compiler/cli/main.ts';

afterEach(() => vi.restoreAllMocks());

describe('facet doctor', () => {
  it('reports the cpu provider as available and every provider with a reason', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(await main(['doctor', '--json'])).toBe(0);
    const report = JSON.parse(log.mock.calls.map((c) => c.join(' ')).join('\n')) as { ort: { providers: { provider: string; available: boolean; detail: string }[]; nchwcBlock: number }; machine: { threads: number } };
    const byName = Object.fromEntries(report.ort.providers.map((p) => [p.provider, p]));
    expect(Object.keys(byName).sort()).toEqual(['cpu', 'cuda', 'webgpu']);
    expect(byName.cpu!.available).toBe(true);
    for (const p of report.ort.providers) expect(p.detail.length).toBeGreaterThan(0);
    expect(report.machine.threads).toBeGreaterThan(0);
    // MLAS's NCHWc block: 8 (AVX2) or 16 (AVX-512), 0 where the CPU provider has none.
    expect([0, 8, 16]).toContain(report.ort.nchwcBlock);
  });

  it('rejects unknown flags', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(await main(['doctor', '--gpu'])).toBe(2);
    expect(err.mock.calls.flat().join(' ')).toMatch(/facet doctor: .*--gpu/);
  });
});
