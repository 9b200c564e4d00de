import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine, EngineName } from '../../compiler/engine/types.ts';
import type { ParamStore } from '../../compiler/graph/ir.ts';
import { readCheckpoint } from '../../compiler/train/checkpoint.ts';
import { TrainingInterruptedError, evaluateWith, readParams, train } from '../../compiler/train/loop.ts';
import { TEST_ENGINES, testEngine } from '../engine/engines.ts';
import { resumeTestOptions } from './resume-config.ts';
import { tinyData, tinyGraph, tinyParams } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'facet-train-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function expectSameParams(a: ParamStore, b: ParamStore): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [k, t] of a) {
    const u = b.get(k)!;
    expect(u.shape, k).toEqual(t.shape);
    // Bitwise: compare the raw bytes, not the values with a tolerance.
    expect(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), k).toBe(true);
  }
}

describe.each(TEST_ENGINES)('train() on %s', (engineName: EngineName) => {
  let engine: Engine;
  let reference: Awaited<ReturnType<typeof train>>;
  const dir = (name: string) => join(root, engineName, name);
  const options = () => resumeTestOptions(engine);
  beforeAll(async () => {
    engine = await testEngine(engineName);
    reference = await train({ ...options(), outDir: dir('reference'), prefetch: 'inline' });
  });

  it('learns the toy task and records each epoch', async () => {
    const graph = tinyGraph();
    const tensors = () => (engineName === 'tfjs' ? tf.memory().numTensors : 0);
    const tensorsBefore = tensors();
    const r = await train({
      graph,
      params: tinyParams(graph),
      train: tinyData(192, 1),
      val: tinyData(60, 2, 'val'),
      epochs: 4,
      batchSize: 32,
      optimizer: { kind: 'sgd', momentum: 0.9 },
      schedule: { kind: 'constant', lr: 0.05 },
      normalize: { mean: [0.4], std: [0.3] },
      engine,
      seed: 0,
    });
    expect(r.history.map((h) => h.epoch)).toEqual([0, 1, 2, 3]);
    expect(r.stats.engine).toBe(engine.description);
    expect(r.history[3]!.trainLoss).toBeLessThan(r.history[0]!.trainLoss);
    expect(r.history[3]!.valAccuracy!).toBeGreaterThan(0.7); // chance is 1/3
    expect(r.stats.steps).toBe(4 * 6);
    expect(tensors()).toBe(tensorsBefore); // no tensor leaks per step
    expect(r.stats.dataShare).toBeGreaterThanOrEqual(0);
    expect(r.stats.dataShare).toBeLessThan(1);
  });

  it('without an output folder, returns the best epoch\'s parameters, not the last epoch\'s', async () => {
    // Constant lr 1 on the toy task: validation accuracy peaks at epoch 1, dips, and recovers.
    const graph = tinyGraph();
    const normalize = { mean: [0.4], std: [0.3] };
    const val = tinyData(30, 2, 'val');
    const r = await train({ graph, params: tinyParams(graph), train: tinyData(96, 1), val, epochs: 5, batchSize: 16, optimizer: { kind: 'sgd', momentum: 0.9 }, schedule: { kind: 'constant', lr: 1 }, normalize, engine, seed: 2 });
    expect(r.best!.epoch).toBeLessThan(4);
    expect([...r.best!.params.values()].some((t, i) => !t.data.every((v, j) => v === [...r.params.values()][i]!.data[j]))).toBe(true);
    expect((await evaluateWith(engine, graph, r.best!.params, val, normalize)).accuracy).toBe(r.best!.valAccuracy);
  });

  it('selects the best checkpoint on validation accuracy', async () => {
    const best = reference.best!;
    const accs = reference.history.map((h) => h.valAccuracy!);
    expect(best.epoch).toBe(accs.indexOf(Math.max(...accs)));
    expect(best.valAccuracy).toBe(Math.max(...accs));
    // best.ckpt holds the parameters that scored that accuracy.
    const { params, meta } = readParams(join(dir('reference'), 'best.ckpt'));
    expect(meta.epoch).toBe(best.epoch);
    const opts = options();
    expect((await evaluateWith(engine, opts.graph, params, opts.val!, opts.normalize)).accuracy).toBe(best.valAccuracy);
  });

  it('resumes after an exception mid-epoch to bit-identical weights (inline run, resumed with worker prefetch)', async () => {
    const out = dir('thrown');
    const stopAt = 13; // epoch 2, after the checkpoint at step 12 and one more step
    const tensors = () => (engineName === 'tfjs' ? tf.memory().numTensors : 0);
    const tensorsBefore = tensors();
    await expect(
      train({
        ...options(),
        outDir: out,
        prefetch: 'inline',
        onStep: (info) => {
          if (info.globalStep === stopAt) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    expect(tensors()).toBe(tensorsBefore); // a failed run frees its variables
    const saved = readCheckpoint<{ epoch: number; batch: number; globalStep: number }>(join(out, 'last.ckpt')).meta;
    expect(saved.globalStep).toBe(12);
    const resumed = await train({ ...options(), outDir: out, resume: true, prefetch: 'worker' });
    expect(resumed.resumedFrom).toEqual({ epoch: saved.epoch, batch: saved.batch });
    expect(resumed.stats.steps).toBe(18 - 12);
    expectSameParams(resumed.params, reference.params);
    expect(resumed.history.map((h) => h.valAccuracy)).toEqual(reference.history.map((h) => h.valAccuracy));
    expect(resumed.best!.epoch).toBe(reference.best!.epoch);
  });

  it('resumes after kill -9 of a tsx child process to bit-identical weights', async () => {
    const out = dir('killed');
    const script = join(import.meta.dirname, 'fixtures', 'resume-run.ts');
    const killed = await new Promise<{ signal: NodeJS.Signals | null; lastStep: number }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, engineName, out, '40', '14'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let lastStep = 0;
      let buffered = '';
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        for (const m of buffered.matchAll(/step (\d+)\n/g)) lastStep = Number(m[1]);
        buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
        if (lastStep >= 9 && child.exitCode === null) child.kill('SIGKILL');
      });
      child.on('error', reject);
      child.on('exit', (_code, signal) => resolve({ signal, lastStep }));
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(join(out, 'final.ckpt'))).toBe(false);
    const saved = readCheckpoint<{ globalStep: number }>(join(out, 'last.ckpt')).meta;
    expect(saved.globalStep).toBeGreaterThanOrEqual(8);
    expect(saved.globalStep).toBeLessThanOrEqual(14);

    const finished = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, engineName, out], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`resume run failed (${code}): ${stderr}`))));
    });
    expect(finished).toMatch(/done \{"epoch":\d,"batch":\d+\}/);
    expectSameParams(readParams(join(out, 'final.ckpt')).params, reference.params);
  });

  it('an aborted run checkpoints the step it stopped at and resumes from exactly there', async () => {
    const out = dir('aborted');
    const controller = new AbortController();
    await expect(
      train({
        ...options(),
        outDir: out,
        onStep: (info) => {
          if (info.globalStep === 5) controller.abort();
        },
        signal: controller.signal,
      }),
    ).rejects.toThrow(TrainingInterruptedError);
    expect(readCheckpoint<{ globalStep: number }>(join(out, 'last.ckpt')).meta.globalStep).toBe(5);
    // An abort during an epoch's last step stops after that epoch's evaluation and checkpoint.
    const atEpochEnd = new AbortController();
    await expect(
      train({
        ...options(),
        outDir: out,
        resume: true,
        onStep: (info) => {
          if (info.globalStep === 12) atEpochEnd.abort();
        },
        signal: atEpochEnd.signal,
      }),
    ).rejects.toThrow(/interrupted at the end of epoch 2/);
    expect(readCheckpoint<{ globalStep: number; history: unknown[] }>(join(out, 'last.ckpt')).meta.history).toHaveLength(2);
    const resumed = await train({ ...options(), outDir: out, resume: true });
    expect(resumed.stats.steps).toBe(18 - 12);
    expectSameParams(resumed.params, reference.params);
  });

  it('refuses to resume a checkpoint from a different configuration', async () => {
    await expect(train({ ...options(), seed: 8, outDir: dir('reference'), resume: true })).rejects.toThrow(
      /last\.ckpt: written by a run with a different configuration/,
    );
    // Another engine's checkpoint is not resumed either: it would not end with the same weights.
    const other = await testEngine(engineName === 'ort' ? 'tfjs' : 'ort');
    await expect(train({ ...options(), engine: other, outDir: dir('reference'), resume: true })).rejects.toThrow(/different configuration .*engine/);
  });

  it('a finished run resumes to the same result without training', async () => {
    const again = await train({ ...options(), outDir: dir('reference'), resume: true });
    expect(again.stats.steps).toBe(0);
    expectSameParams(again.params, reference.params);
  });

  it('distils from a frozen teacher on the clean batch: the teacher stays as it was, the student learns', async () => {
    const graph = tinyGraph();
    const teacherParams = tinyParams(graph, 9);
    const before = new Map([...teacherParams].map(([k, t]) => [k, Float32Array.from(t.data)]));
    const r = await train({
      graph,
      params: tinyParams(graph),
      train: tinyData(64, 3),
      epochs: 2,
      batchSize: 16,
      optimizer: { kind: 'radam', weightDecay: 1e-4 },
      schedule: { kind: 'cosine', lr: 1e-2 },
      augment: { flip: true, pad: 1, cutout: 0 },
      objective: { ce: 0, feature: { weight: 1, groups: 1 } },
      teachers: { models: [{ graph, params: teacherParams }], input: 'clean' },
      normalize: { mean: [0.4], std: [0.3] },
      engine,
      seed: 1,
    });
    // Feature distillation alone: the loss is 1 − cos to the teacher, so it starts in (0, 2] and falls.
    expect(r.history[0]!.trainLoss).toBeGreaterThan(0);
    expect(r.history[1]!.trainLoss).toBeLessThan(r.history[0]!.trainLoss);
    for (const [k, t] of teacherParams) expect(t.data, k).toEqual(before.get(k));
  });

  it('rejects data that does not fit the graph, naming both', async () => {
    const graph = tinyGraph(8);
    await expect(
      train({ ...options(), graph, params: tinyParams(graph), teachers: undefined, objective: undefined, train: tinyData(64, 1, 'train', 10) }),
    ).rejects.toThrow(/toy\/train images are 10×10×1, graph tiny-test expects 8×8×1/);
    const params = tinyParams(graph);
    params.delete('fc/bias');
    await expect(train({ ...options(), graph, params })).rejects.toThrow(/parameter "fc\/bias" is missing/);
  });

  it('names a corrupt last.ckpt instead of silently starting over', async () => {
    const out = dir('corrupt');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'last.ckpt'), 'FCKP but then garbage');
    await expect(train({ ...options(), outDir: out, resume: true })).rejects.toThrow(/corrupt[\/\\]last\.ckpt: not a valid Facet checkpoint/);
  });
});

