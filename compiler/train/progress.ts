/**
 * Training progress: a single redrawn line on a terminal (throttled to ~5 updates/s),
 * plain log lines every N steps and per epoch otherwise (CI logs, files, pipes).
 */

export interface StepInfo {
  /** 0-based epoch. */
  epoch: number;
  epochs: number;
  /** Steps done in this epoch (1-based after the first step). */
  step: number;
  stepsPerEpoch: number;
  globalStep: number;
  totalSteps: number;
  loss: number;
  lr: number;
  /** Training images per second over this epoch so far. */
  imagesPerSecond: number;
  /** Share of step wall time the main thread spent on data preparation, this epoch so far. */
  dataShare: number;
  /** Seconds of training (not evaluation) left at the current speed. */
  etaSeconds: number;
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
  /** Learning rate of the epoch's last step. */
  lr: number;
  seconds: number;
  imagesPerSecond: number;
  dataShare: number;
}

export interface ProgressReporter {
  step(info: StepInfo): void;
  epoch(record: EpochRecord, epochs: number): void;
  /** Clears the live line, if any. */
  close(): void;
}

export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export const SILENT: ProgressReporter = { step() {}, epoch() {}, close() {} };

export function createProgress(out: Output = process.stderr, opts: { logEvery?: number; now?: () => number } = {}): ProgressReporter {
  return out.isTTY ? new LiveLine(out, opts.now ?? Date.now) : new LogLines(out, opts.logEvery ?? 50);
}

const pct = (x: number): string => `${(100 * x).toFixed(0)}%`;
const accuracy = (x: number | null): string => (x === null ? '—' : `${(100 * x).toFixed(2)}%`);

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}:${String(r).padStart(2, '0')}`;
}

export function formatEpoch(r: EpochRecord, epochs: number): string {
  return (
    `epoch ${r.epoch + 1}/${epochs}  loss ${r.trainLoss.toFixed(4)}  train acc ${accuracy(r.trainAccuracy)}  ` +
    `val loss ${r.valLoss === null ? '—' : r.valLoss.toFixed(4)}  val acc ${accuracy(r.valAccuracy)}  ` +
    `lr ${r.lr.toPrecision(3)}  ${r.imagesPerSecond.toFixed(1)} img/s  data ${pct(r.dataShare)}  ${formatDuration(r.seconds)}`
  );
}

function stepText(i: StepInfo): string {
  return (
    `epoch ${i.epoch + 1}/${i.epochs} step ${i.step}/${i.stepsPerEpoch}  loss ${i.loss.toFixed(4)}  ` +
    `${i.imagesPerSecond.toFixed(1)} img/s  data ${pct(i.dataShare)}  ETA ${formatDuration(i.etaSeconds)}`
  );
}

class LiveLine implements ProgressReporter {
  private last = -Infinity;
  private shown = false;
  constructor(
    private readonly out: Output,
    private readonly now: () => number,
  ) {}

  step(info: StepInfo): void {
    const t = this.now();
    if (t - this.last < 200 && info.step !== info.stepsPerEpoch) return;
    this.last = t;
    const width = Math.max(20, (this.out.columns ?? 100) - 1);
    const barWidth = 20;
    const filled = Math.round((barWidth * info.step) / info.stepsPerEpoch);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${stepText(info)}`;
    this.out.write(`\r${line.slice(0, width).padEnd(width)}`);
    this.shown = true;
  }

  epoch(record: EpochRecord, epochs: number): void {
    this.close();
    this.out.write(`${formatEpoch(record, epochs)}\n`);
  }

  close(): void {
    if (this.shown) this.out.write(`\r${' '.repeat(Math.max(20, (this.out.columns ?? 100) - 1))}\r`);
    this.shown = false;
  }
}

class LogLines implements ProgressReporter {
  constructor(
    private readonly out: Output,
    private readonly every: number,
  ) {}

  step(info: StepInfo): void {
    if (info.step % this.every === 0) this.out.write(`${stepText(info)}\n`);
  }

  epoch(record: EpochRecord, epochs: number): void {
    this.out.write(`${formatEpoch(record, epochs)}\n`);
  }

  close(): void {}
}
