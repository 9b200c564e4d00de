import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../compiler/cli/main.ts';

async function run(argv: string[]): Promise<{ code: number; out: string }> {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    const code = await main(argv);
    return { code, out: log.mock.calls.map((c) => c.join(' ')).join('\n') };
  } finally {
    log.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('facet --help', () => {
  it('facet data fetch --help prints the help of fetch alone', async () => {
    const { code, out } = await run(['data', 'fetch', '--help']);
    expect(code).toBe(0);
    expect(out.startsWith('Usage: facet data fetch ')).toBe(true);
    expect(out).toContain('--base-url URL');
    expect(out).not.toContain('facet data info');
  });

  it('facet data info -h prints the help of info alone', async () => {
    const { out } = await run(['data', 'info', '-h']);
    expect(out.startsWith('Usage: facet data info ')).toBe(true);
    expect(out).toContain('--channels C');
    expect(out).not.toContain('--base-url');
  });

  it('facet data --help prints both subcommands', async () => {
    const { out } = await run(['data', '--help']);
    expect(out).toContain('facet data fetch');
    expect(out).toContain('facet data info');
  });

  it('a command without subcommands prints its own help whatever follows', async () => {
    const { out } = await run(['info', 'x', '--help']);
    expect(out).toMatch(/^Usage: facet info/);
  });
});
