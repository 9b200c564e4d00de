/** shared/ gives bit-identical random streams and degradations in Node (V8), Deno (V8) and Bun (JavaScriptCore). */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fingerprint } from './runtime-probe.ts';

const root = new URL('../../', import.meta.url).pathname;
const probe = 'test/shared/runtime-probe.ts';

function runIn(bin: string, args: string[]): unknown {
  const path = `${root}node_modules/.bin/${bin}`;
  if (!existsSync(path)) throw new Error(`${path} is missing: run npm install (${bin} is a devDependency)`);
  const out = execFileSync(path, [...args, probe], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

describe('shared/ across JS runtimes', () => {
  const node = fingerprint();

  it('the fingerprint covers every degradation and shape (15 distinct hashes)', () => {
    expect(Object.keys(node.degraded as object)).toHaveLength(15);
    expect(new Set(Object.values(node.degraded as object)).size).toBe(15);
  });

  it('Deno computes the same fingerprint', () => {
    expect(runIn('deno', ['run', '--quiet', '--no-prompt'])).toEqual(node);
  });

  it('Bun (JavaScriptCore) computes the same fingerprint', () => {
    expect(runIn('bun', [])).toEqual(node);
  });
});
