import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson, hashSources, runStage, sha256File, stageHash, type StageKey } from '../../compiler/pipeline/cache.ts';
import { tempDirs } from './helpers/temp.ts';

const temp = tempDirs();
afterAll(temp.cleanup);

const tempDir = () => temp.make('facet-cache-');

/** A stage that writes `value` to out.txt and counts its runs. */
function counted(value: string) {
  const fn = async ({ outDir }: { outDir: string }) => {
    fn.runs++;
    await writeFile(join(outDir, 'out.txt'), value);
    return { value };
  };
  fn.runs = 0;
  return fn;
}

const key = (over: Partial<StageKey> = {}): StageKey => ({ name: 'base', config: { epochs: 2, lr: 0.1 }, inputs: { data: 'aa' }, code: 'v1', ...over });

describe('stage cache', () => {
  it('hashes canonically: key order does not matter, values do', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: 0 } })).toBe('{"a":{"c":0,"d":[1,{"x":1,"y":2}]},"b":1}');
    expect(stageHash(key({ config: { lr: 0.1, epochs: 2 } }))).toBe(stageHash(key()));
    expect(stageHash(key({ config: { lr: 0.1, epochs: 3 } }))).not.toBe(stageHash(key()));
    expect(() => stageHash(key({ config: { lr: NaN } }))).toThrow(/non-finite/);
  });

  it('a rerun with nothing changed does no work and returns the same artifacts', async () => {
    const cache = await tempDir();
    const fn = counted('weights');
    const first = await runStage(cache, key(), fn);
    expect(first.cached).toBe(false);
    expect(fn.runs).toBe(1);
    const done = JSON.parse(await readFile(join(first.dir, 'done.json'), 'utf8'));
    expect(done).toMatchObject({ stage: 'base', hash: first.hash, meta: { value: 'weights' }, files: { 'out.txt': { bytes: 7 } } });
    expect(done.files['out.txt'].sha256).toBe(await sha256File(join(first.dir, 'out.txt')));
    expect(done.wallMs).toBeGreaterThanOrEqual(0);
    expect(done.runs).toBe(1);

    const second = await runStage(cache, key(), fn);
    expect(second.cached).toBe(true);
    expect(fn.runs).toBe(1);
    expect(second.dir).toBe(first.dir);
    expect(second.checksum('out.txt')).toBe(first.checksum('out.txt'));
    expect(() => second.checksum('nope.bin')).toThrow(/stage base .* has no artifact "nope.bin"/);
    // The work dir of a finished stage is gone, and no temp dir is left behind.
    expect((await readdir(cache)).sort()).toEqual([`base-${first.hash}`]);
  });

  it('invalidates on config, input and code-version changes, and only downstream', async () => {
    const cache = await tempDir();
    // A chain base → finetune: finetune's input is base's artifact checksum.
    const pipeline = async (baseConfig: unknown, data: string, code: string, baseValue = 'w') => {
      const base = counted(baseValue);
      const b = await runStage(cache, key({ config: baseConfig, inputs: { data }, code }), base);
      const fine = counted('fine');
      const other = counted('other');
      await runStage(cache, { name: 'finetune', config: { epochs: 1 }, inputs: { base: b.checksum('out.txt') }, code: 'f1' }, fine);
      await runStage(cache, { name: 'independent', config: { k: 1 }, inputs: { data }, code: 'i1' }, other);
      return [base.runs, fine.runs, other.runs];
    };
    expect(await pipeline({ epochs: 2 }, 'aa', 'v1')).toEqual([1, 1, 1]);
    expect(await pipeline({ epochs: 2 }, 'aa', 'v1')).toEqual([0, 0, 0]);
    // Config change in base: base reruns; its artifact bytes are the same, so finetune stays cached.
    expect(await pipeline({ epochs: 3 }, 'aa', 'v1')).toEqual([1, 0, 0]);
    // … and when base's output changes, finetune reruns too, the unrelated stage does not.
    expect(await pipeline({ epochs: 4 }, 'aa', 'v1', 'w2')).toEqual([1, 1, 0]);
    // Input change: everything that reads the data reruns.
    expect(await pipeline({ epochs: 4 }, 'bb', 'v1', 'w2')).toEqual([1, 0, 1]);
    // Code-version change of base only.
    expect(await pipeline({ epochs: 4 }, 'bb', 'v2', 'w2')).toEqual([1, 0, 0]);
  });

  it('a failing stage leaves no done.json and reruns next time; its work dir survives for resuming, with its wall time', async () => {
    const cache = await tempDir();
    const k = key();
    const id = `base-${stageHash(k)}`;
    await expect(
      runStage(cache, k, async ({ outDir, workDir }) => {
        await writeFile(join(workDir, 'checkpoint.json'), '{"epoch":1}');
        await writeFile(join(outDir, 'out.txt'), 'partial');
        await new Promise((r) => setTimeout(r, 300));
        throw new Error('power cut');
      }),
    ).rejects.toThrow('power cut');
    expect(existsSync(join(cache, id))).toBe(false);
    expect((await readdir(cache)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect(await readFile(join(cache, `${id}.work`, 'checkpoint.json'), 'utf8')).toBe('{"epoch":1}');

    let resumedFrom: unknown;
    const r = await runStage(cache, k, async ({ outDir, workDir }) => {
      resumedFrom = JSON.parse(await readFile(join(workDir, 'checkpoint.json'), 'utf8'));
      await writeFile(join(outDir, 'out.txt'), 'complete');
    });
    expect(resumedFrom).toEqual({ epoch: 1 });
    expect(r.cached).toBe(false);
    // The reported wall time is the stage's cost over both runs, not the resumed run's few ms.
    expect(r.done.wallMs).toBeGreaterThanOrEqual(290);
    expect(r.done.runs).toBe(2);
    expect(await readFile(join(r.dir, 'out.txt'), 'utf8')).toBe('complete');
    expect(existsSync(join(cache, `${id}.work`))).toBe(false);
  });

  it('a process killed with SIGKILL mid-write leaves no stage dir; the rerun resumes and sweeps the temp dir', async () => {
    const cache = await tempDir();
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'helpers/stage-child.ts'), cache], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
    });
    // node --import tsx runs the script in this one process, so the kill reaches the stage itself.
    const exited = new Promise((r) => child.once('exit', (_code, signal) => r(signal)));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const k: StageKey = { name: 'train', config: { epochs: 3 }, inputs: {}, code: 'v1' };
    const id = `train-${stageHash(k)}`;
    const names = await readdir(cache);
    expect(names).not.toContain(id);
    expect(names.some((n) => n.startsWith(`.tmp-${id}-`))).toBe(true);
    expect(existsSync(join(cache, `${id}.work`, 'checkpoint.json'))).toBe(true);

    const r = await runStage(cache, k, async ({ outDir, workDir }) => {
      const { epoch } = JSON.parse(await readFile(join(workDir, 'checkpoint.json'), 'utf8'));
      await writeFile(join(outDir, 'weights.bin'), `resumed at ${epoch}`);
    });
    expect(await readFile(join(r.dir, 'weights.bin'), 'utf8')).toBe('resumed at 2');
    expect((await readdir(cache)).sort()).toEqual([id]);
  });

  it('a stage dir with missing or damaged artifacts is rebuilt', async () => {
    const cache = await tempDir();
    const fn = counted('abcdef');
    const r = await runStage(cache, key(), fn);
    await writeFile(join(r.dir, 'out.txt'), 'abc'); // truncated: size check catches it
    expect((await runStage(cache, key(), fn)).cached).toBe(false);
    await writeFile(join(r.dir, 'out.txt'), 'abcxyz'); // same size, other bytes: only verify catches it
    expect((await runStage(cache, key(), fn)).cached).toBe(true);
    expect((await runStage(cache, key(), fn, { verify: true })).cached).toBe(false);
    expect(fn.runs).toBe(3);
  });

  it('rejects bad stage names and a stage writing done.json', async () => {
    const cache = await tempDir();
    await expect(runStage(cache, key({ name: '../evil' }), counted('x'))).rejects.toThrow(/stage name/);
    await expect(runStage(cache, key(), async ({ outDir }) => writeFile(join(outDir, 'done.json'), '{}'))).rejects.toThrow(/done\.json/);
  });

  it('code version hashes file contents', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.ts'), 'one');
    await writeFile(join(dir, 'b.ts'), 'two');
    const v1 = await hashSources([join(dir, 'b.ts'), join(dir, 'a.ts')], dir);
    expect(await hashSources([join(dir, 'a.ts'), join(dir, 'b.ts')], dir)).toBe(v1);
    await writeFile(join(dir, 'b.ts'), 'two!');
    expect(await hashSources([join(dir, 'a.ts'), join(dir, 'b.ts')], dir)).not.toBe(v1);
    await expect(hashSources([join(dir, 'missing.ts')], dir)).rejects.toThrow(/cannot read .*missing\.ts/);
  });
});

describe('stage lock', () => {
  it('refuses a stage another live process is running, and takes over a dead process\'s lock', async () => {
    const cache = await tempDir();
    const k = key();
    const lock = join(cache, `base-${stageHash(k)}.lock`);
    const { hostname } = await import('node:os');
    // A live holder: this process's parent.
    await writeFile(lock, JSON.stringify({ pid: process.ppid, host: hostname(), since: 'earlier' }));
    const fn = counted('w');
    await expect(runStage(cache, k, fn)).rejects.toThrow(new RegExp(`stage base is being run by process ${process.ppid} .*delete the lock`));
    expect(fn.runs).toBe(0);
    // A dead holder: a child that has exited.
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => child.once('exit', r));
    await writeFile(lock, JSON.stringify({ pid: child.pid, host: hostname(), since: 'earlier' }));
    expect((await runStage(cache, k, fn)).cached).toBe(false);
    expect(existsSync(lock)).toBe(false);
    // A half-written lock (its writer died between create and write) is stale too.
    const other = key({ config: { other: 1 } });
    await writeFile(join(cache, `base-${stageHash(other)}.lock`), '');
    expect((await runStage(cache, other, fn)).cached).toBe(false);
    expect((await readdir(cache)).filter((n) => n.endsWith('.lock'))).toEqual([]);
  });

  it('the lock is released when the stage fails', async () => {
    const cache = await tempDir();
    await expect(runStage(cache, key(), async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect((await readdir(cache)).filter((n) => n.endsWith('.lock'))).toEqual([]);
  });
});
