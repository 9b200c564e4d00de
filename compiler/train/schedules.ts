/**
 * Learning-rate schedules, evaluated per optimizer step. A schedule is plain data (it
 * goes into configs and checkpoints); {@link learningRate} turns it into a number for a
 * step, so resuming needs nothing but the step count.
 */

export interface ConstantSchedule {
  kind: 'constant';
  lr: number;
}

export interface StepSchedule {
  kind: 'step';
  lr: number;
  /** Multiplier applied at each milestone. */
  gamma: number;
  /** Milestones, in epochs (`unit: 'epoch'`) or in fractions of all steps (`unit: 'fraction'`). */
  milestones: number[];
  unit: 'epoch' | 'fraction';
}

export interface CosineSchedule {
  kind: 'cosine';
  lr: number;
  /** Final learning rate (default 0). */
  floor?: number;
  /** Steps over which to anneal (default: all steps of the run); constant at `floor` after. */
  steps?: number;
}

/**
 * torch.optim.lr_scheduler.OneCycleLR (two phases): from peak/divFactor up to `peak` at
 * `pctStart` of the steps, then down to peak/(divFactor·finalDivFactor).
 */
export interface OneCycleSchedule {
  kind: 'onecycle';
  peak: number;
  /** Fraction of steps spent warming up (default 0.3). */
  pctStart?: number;
  /** Shape of both phases (default 'cos'). */
  anneal?: 'cos' | 'linear';
  /** Initial lr = peak / divFactor (default 25). */
  divFactor?: number;
  /** Final lr = initial / finalDivFactor (default 1e4). */
  finalDivFactor?: number;
}

export type ScheduleConfig = ConstantSchedule | StepSchedule | CosineSchedule | OneCycleSchedule;

export interface ScheduleClock {
  /** Total optimizer steps of the run. */
  totalSteps: number;
  stepsPerEpoch: number;
}

/** Learning rate for optimizer step `step` (0-based). */
export function learningRate(schedule: ScheduleConfig, step: number, clock: ScheduleClock): number {
  switch (schedule.kind) {
    case 'constant':
      return schedule.lr;
    case 'step': {
      const passed = schedule.milestones.filter((m) => step >= milestoneStep(schedule, m, clock)).length;
      return schedule.lr * schedule.gamma ** passed;
    }
    case 'cosine': {
      const floor = schedule.floor ?? 0;
      const span = schedule.steps ?? clock.totalSteps;
      const t = Math.min(step, span) / span;
      return floor + ((schedule.lr - floor) * (1 + Math.cos(Math.PI * t))) / 2;
    }
    case 'onecycle': {
      const pctStart = schedule.pctStart ?? 0.3;
      const initial = schedule.peak / (schedule.divFactor ?? 25);
      const final = initial / (schedule.finalDivFactor ?? 1e4);
      const shape = schedule.anneal === 'linear' ? linear : cosine;
      // Phase ends as in PyTorch: warm-up reaches the peak at step pctStart·T − 1, the
      // anneal reaches the final rate at step T − 1.
      const warmEnd = pctStart * clock.totalSteps - 1;
      const last = clock.totalSteps - 1;
      if (step <= warmEnd) return shape(initial, schedule.peak, warmEnd > 0 ? step / warmEnd : 1);
      return shape(schedule.peak, final, Math.min(1, (step - warmEnd) / (last - warmEnd)));
    }
    default:
      throw new Error(`unknown schedule kind "${(schedule as { kind: string }).kind}"`);
  }
}

function milestoneStep(schedule: StepSchedule, milestone: number, clock: ScheduleClock): number {
  return schedule.unit === 'epoch'
    ? Math.round(milestone * clock.stepsPerEpoch)
    : Math.round(milestone * clock.totalSteps);
}

const linear = (from: number, to: number, pct: number): number => from + (to - from) * pct;
const cosine = (from: number, to: number, pct: number): number => to + ((from - to) * (Math.cos(Math.PI * pct) + 1)) / 2;

/** Checks a schedule's numbers; throws naming the field. */
export function validateSchedule(schedule: ScheduleConfig, where = 'schedule'): void {
  const bad = (field: string, why: string): never => {
    throw new Error(`${where}.${field}: ${why}`);
  };
  const positive = (field: string, v: number | undefined) => {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) bad(field, `must be a positive number, got ${v}`);
  };
  switch (schedule.kind) {
    case 'constant':
      positive('lr', schedule.lr);
      return;
    case 'step':
      positive('lr', schedule.lr);
      positive('gamma', schedule.gamma);
      if (schedule.unit !== 'epoch' && schedule.unit !== 'fraction') bad('unit', 'must be "epoch" or "fraction"');
      if (schedule.unit === 'fraction' && schedule.milestones.some((m) => m < 0 || m > 1)) bad('milestones', 'fractions must be in [0, 1]');
      return;
    case 'cosine':
      positive('lr', schedule.lr);
      positive('steps', schedule.steps);
      if (schedule.floor !== undefined && !(schedule.floor >= 0 && schedule.floor <= schedule.lr)) bad('floor', 'must be in [0, lr]');
      return;
    case 'onecycle':
      positive('peak', schedule.peak);
      if (schedule.pctStart !== undefined && !(schedule.pctStart > 0 && schedule.pctStart < 1)) bad('pctStart', 'must be in (0, 1)');
      positive('divFactor', schedule.divFactor);
      positive('finalDivFactor', schedule.finalDivFactor);
      return;
    default:
      bad('kind', `unknown schedule kind "${(schedule as { kind: string }).kind}"`);
  }
}
