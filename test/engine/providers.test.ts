import { describe, expect, it } from 'vitest';
import { createOrtEngine } from '../../compiler/engine/ort/engine.ts';
import { probeProviders } from '../../compiler/engine/ort/session.ts';

describe('execution providers', () => {
  it('asking for a provider this machine lacks is an error that says why; one it has gives an engine on it', async () => {
    for (const report of await probeProviders()) {
      if (report.provider === 'cpu') continue;
      if (report.available) {
        const engine = await createOrtEngine({ provider: report.provider });
        expect(engine.description).toMatch(new RegExp(`^ort ${report.provider}, \\d+ threads?$`));
        expect(engine.identity).toContain(`ort/${report.provider}/r1/`);
      } else {
        await expect(createOrtEngine({ provider: report.provider })).rejects.toThrow(new RegExp(`the ${report.provider} provider is not available here: .+`));
      }
    }
  });

  it('auto takes webgpu when an adapter answers, else the CPU with one replica per thread', async () => {
    const webgpu = (await probeProviders()).find((p) => p.provider === 'webgpu')!;
    const engine = await createOrtEngine({ provider: 'auto', threads: 2 });
    expect(engine.description).toBe(webgpu.available ? 'ort webgpu, 2 threads' : 'ort cpu, 2 replicas × 1 thread');
  });
});
