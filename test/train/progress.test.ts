import { describe, expect, it } from 'vitest';
import { type EpochRecord, type StepInfo, createProgress, formatDuration } from '../../compiler/train/progress.ts';

const info = (step: number, over: Partial<StepInfo> = {}): StepInfo => ({
  epoch: 0,
  epochs: 2,
  step,
  stepsPerEpoch: 100,
  globalStep: step,
  totalSteps: 200,
  loss: 0.5,
  lr: 0.1,
  imagesPerSecond: 321.5,
  dataShare: 0.12,
  etaSeconds: 75,
  ...over,
});
const record: EpochRecord = { epoch: 0, trainLoss: 0.5, trainAccuracy: 0.8, valLoss: 0.6, valAccuracy: 0.75, lr: 0.01, seconds: 30, imagesPerSecond: 300, dataShare: 0.1, };

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { out: { isTTY, columns: 120, write: (t: string) => chunks.push(t) }, chunks };
}

describe('progress', () => {
  it('on a terminal redraws one line, at most every 200 ms, with epoch, step, loss, img/s, data share and ETA', () => {
    const { out, chunks } = sink(true);
    let now = 0;
    const p = createProgress(out, { now: () => now });
    for (let s = 1; s <= 50; s++) {
      now += 10; // 100 steps/s
      p.step(info(s));
    }
    // 500 ms of steps → the first draw plus one every 200 ms.
    expect(chunks.length).toBe(3);
    for (const c of chunks) {
      expect(c.startsWith('\r')).toBe(true);
      expect(c).not.toContain('\n');
    }
    expect(chunks[0]).toMatch(/epoch 1\/2 step 1\/100 +loss 0\.5000 +321\.5 img\/s +data 12% +ETA 1:15/);
    p.step(info(100)); // the last step of an epoch is always drawn
    expect(chunks.length).toBe(4);
    p.epoch(record, 2);
    expect(chunks.at(-1)).toBe('epoch 1/2  loss 0.5000  train acc 80.00%  val loss 0.6000  val acc 75.00%  lr 0.0100  300.0 img/s  data 10%  0:30\n');
  });

  it('elsewhere writes plain lines every N steps and per epoch', () => {
    const { out, chunks } = sink(false);
    const p = createProgress(out, { logEvery: 25 });
    for (let s = 1; s <= 100; s++) p.step(info(s));
    p.epoch(record, 2);
    p.close();
    expect(chunks.length).toBe(5);
    expect(chunks.every((c) => c.endsWith('\n') && !c.includes('\r'))).toBe(true);
    expect(chunks[1]).toContain('step 50/100');
  });

  it('formats durations', () => {
    expect(formatDuration(75)).toBe('1:15');
    expect(formatDuration(3 * 3600 + 5 * 60)).toBe('3h05m');
    expect(formatDuration(Infinity)).toBe('?');
  });
});
