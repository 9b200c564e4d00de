import { describe, expect, it } from 'vitest';
import { type ScheduleConfig, learningRate, validateSchedule } from '../../compiler/train/schedules.ts';

const clock = { totalSteps: 100, stepsPerEpoch: 10 };
const lr = (s: ScheduleConfig, step: number, c = clock) => learningRate(s, step, c);

describe('learning-rate schedules', () => {
  it('constant', () => {
    expect(lr({ kind: 'constant', lr: 0.3 }, 0)).toBe(0.3);
    expect(lr({ kind: 'constant', lr: 0.3 }, 99)).toBe(0.3);
  });

  it('step at epochs: ×γ from the first step of each milestone epoch', () => {
    const s: ScheduleConfig = { kind: 'step', lr: 0.1, gamma: 0.2, milestones: [3, 6], unit: 'epoch' };
    expect(lr(s, 29)).toBeCloseTo(0.1, 12);
    expect(lr(s, 30)).toBeCloseTo(0.02, 12);
    expect(lr(s, 59)).toBeCloseTo(0.02, 12);
    expect(lr(s, 60)).toBeCloseTo(0.004, 12);
  });

  it('step at fractions of the run (the FusionDistill 30/70/90% recipe)', () => {
    const s: ScheduleConfig = { kind: 'step', lr: 1e-3, gamma: 0.2, milestones: [0.3, 0.7, 0.9], unit: 'fraction' };
    expect(lr(s, 29)).toBeCloseTo(1e-3, 15);
    expect(lr(s, 30)).toBeCloseTo(2e-4, 15);
    expect(lr(s, 70)).toBeCloseTo(4e-5, 15);
    expect(lr(s, 90)).toBeCloseTo(8e-6, 15);
  });

  it('cosine: lr at 0, (lr+floor)/2 halfway, floor at the end and after', () => {
    const s: ScheduleConfig = { kind: 'cosine', lr: 1e-3, floor: 1e-5 };
    expect(lr(s, 0)).toBeCloseTo(1e-3, 15);
    expect(lr(s, 50)).toBeCloseTo((1e-3 + 1e-5) / 2, 15);
    // step 25: floor + (lr − floor)·(1 + cos(π/4))/2
    expect(lr(s, 25)).toBeCloseTo(1e-5 + (1e-3 - 1e-5) * (1 + Math.SQRT1_2) / 2, 15);
    expect(lr(s, 100)).toBeCloseTo(1e-5, 15);
    expect(lr({ kind: 'cosine', lr: 1, steps: 10 }, 50)).toBe(0);
  });

  it('one-cycle follows torch OneCycleLR (two phases, cos anneal)', () => {
    // peak 0.1, pct 0.15 of 100 steps: initial 0.1/25 = 0.004 at step 0, peak at step 14
    // (= 0.15·100 − 1), final 0.004/1e4 = 4e-7 at step 99.
    const s: ScheduleConfig = { kind: 'onecycle', peak: 0.1, pctStart: 0.15 };
    expect(lr(s, 0)).toBeCloseTo(0.004, 12);
    expect(lr(s, 14)).toBeCloseTo(0.1, 12);
    expect(lr(s, 99)).toBeCloseTo(4e-7, 12);
    // warm-up midpoint (step 7 of 14): (0.004 + 0.1)/2
    expect(lr(s, 7)).toBeCloseTo(0.052, 12);
    // anneal midpoint: step 14 + 85/2 = 56.5 → use step 56 with its exact cos value
    const pct = (56 - 14) / (99 - 14);
    expect(lr(s, 56)).toBeCloseTo(4e-7 + ((0.1 - 4e-7) * (Math.cos(Math.PI * pct) + 1)) / 2, 12);
    const linear: ScheduleConfig = { kind: 'onecycle', peak: 0.1, pctStart: 0.15, anneal: 'linear' };
    expect(lr(linear, 7)).toBeCloseTo(0.052, 12);
    expect(lr(linear, 14 + 85 * 0.5)).toBeCloseTo((0.1 + 4e-7) / 2, 12);
  });

  it('rejects bad numbers naming the field', () => {
    expect(() => validateSchedule({ kind: 'cosine', lr: -1 })).toThrow(/schedule\.lr: must be a positive number/);
    expect(() => validateSchedule({ kind: 'onecycle', peak: 0.1, pctStart: 1.5 })).toThrow(/schedule\.pctStart/);
    expect(() => validateSchedule({ kind: 'step', lr: 0.1, gamma: 0.2, milestones: [2], unit: 'fraction' })).toThrow(/milestones/);
    expect(() => validateSchedule({ kind: 'warp' } as unknown as ScheduleConfig)).toThrow(/unknown schedule kind "warp"/);
  });
});
