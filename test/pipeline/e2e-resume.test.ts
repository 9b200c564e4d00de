import { spawn } from 'node:child_process';
import { cp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../../compiler/pipeline/compile.ts';
import { stageImpls } from '../../compiler/pipeline/stages.ts';
import { testEngine } from '../engine/engines.ts';
import { tinyConfig, tinyData } from './helpers/tiny.ts';
import { tempDirs } from './helpers/temp.ts';

const temp = tempDirs();
afterAll(temp.cleanup);

let firstRoot = '';

beforeAll(async () => {
  const engine = await testEngine('ort');
  // An uninterrupted compile (no baselines) to compare the resumed one with.
  firstRoot = await temp.make('facet-uninterrupted-');
  await compile({ config: tinyConfig(), cacheDir: join(firstRoot, 'cache'), outDir: join(firstRoot, 'out'), baselines: false, quick: true, data: tinyData(), impls: stageImpls({ engine, prefetch: 'inline' }) });
});

describe('resuming a killed compile (tiny, ort engine)', () => {
  it('a compile killed with SIGKILL mid-stage resumes and ends with the same weights', async () => {
    expect(firstRoot).not.toBe('');
    const root = await temp.make('facet-kill-');
    const cache = join(root, 'cache');
    await cp(join(firstRoot, 'cache'), cache, { recursive: true, filter: (src) => !/\/(distill|eval-fusiondistill)-/.test(src) });
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'helpers/compile-child.ts'), root], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('step 3\n')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`child exited with ${code} before step 3:\n${out}`)));
    });
    const exited = new Promise((r) => child.once('exit', (_code, signal) => r(signal)));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(out).not.toContain('finished');
    const work = (await readdir(cache)).find((n) => n.startsWith('distill-') && n.endsWith('.work'));
    expect(work).toBeDefined();

    const resumed = await compile({ config: tinyConfig(), cacheDir: cache, outDir: join(root, 'out'), baselines: false, quick: true, data: tinyData(), impls: stageImpls({ engine: await testEngine('ort'), prefetch: 'inline', checkpointEverySteps: 1 }) });
    expect(resumed.ran).toEqual(['distill', 'eval-fusiondistill']);
    expect((resumed.results.get('distill')!.done.meta as { resumedFrom: { batch: number } }).resumedFrom.batch).toBeGreaterThanOrEqual(3);
    const dir = resumed.results.get('distill')!.dir;
    expect(await readFile(join(dir, 'params.ckpt'))).toEqual(await readFile(join(firstRoot, 'cache', dir.split('/').at(-1)!, 'params.ckpt')));
  });
});
