/** Summary statistics the benchmark scripts print over seeds or rounds. */

export const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Sample standard deviation (n − 1); 0 for fewer than two values. */
export const sampleSd = (xs: readonly number[]): number => {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

/** Median (the mean of the middle two for an even count; NaN for none). */
export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Two-sided 95% critical values of Student's t for 1–30 degrees of freedom (standard tables). */
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

/** t such that P(|T_df| ≤ t) = 0.95; past the table, the Cornish–Fisher expansion around z = 1.96 (error < 1e-3). */
export function t95(df: number): number {
  if (!(df >= 1) || !Number.isInteger(df)) throw new RangeError(`t95: degrees of freedom must be a positive integer, got ${df}`);
  if (df <= T95.length) return T95[df - 1]!;
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2);
}

/**
 * Paired comparison a − b over matched runs (same seed: same calibration draw, same fine-tuning
 * order): the mean difference with its 95% confidence interval (t over n − 1 degrees of freedom;
 * undefined for fewer than two pairs), and how many pairs a wins, ties and loses. Pairing removes
 * the variation the seed causes in both alike, so it can see a gap that unpaired mean ± std hides.
 */
export function pairedDifference(a: readonly number[], b: readonly number[]): { n: number; mean: number; sd: number; ci95?: [number, number]; wins: number; ties: number; losses: number } {
  if (a.length !== b.length) throw new RangeError(`pairedDifference: ${a.length} values against ${b.length}`);
  const d = a.map((x, i) => x - b[i]!);
  const m = mean(d);
  const sd = sampleSd(d);
  const half = d.length >= 2 ? (t95(d.length - 1) * sd) / Math.sqrt(d.length) : undefined;
  return {
    n: d.length,
    mean: m,
    sd,
    ...(half === undefined ? {} : { ci95: [m - half, m + half] as [number, number] }),
    wins: d.filter((x) => x > 0).length,
    ties: d.filter((x) => x === 0).length,
    losses: d.filter((x) => x < 0).length,
  };
}

/**
 * Medians of several functions timed in alternating blocks of 10 calls, so that a change in the
 * machine's load (it is shared) reaches all of them alike; ratios between them are the figures.
 */
export async function interleavedMedians(runs: number, fns: Record<string, () => unknown>): Promise<Record<string, number>> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(fns).map((k) => [k, []]));
  for (const fn of Object.values(fns)) for (let i = 0; i < Math.max(20, runs / 5); i++) await fn();
  for (let done = 0; done < runs; done += 10) {
    for (const [k, fn] of Object.entries(fns)) {
      for (let i = 0; i < 10; i++) {
        const t = performance.now();
        await fn();
        times[k]!.push(performance.now() - t);
      }
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

/**
 * How much the machine itself delays a short CPU task: wall time of a fixed ~0.5 ms computation,
 * 2,000 times, in this process. On a quiet core p99 ≈ p50; on a shared one the p99 shows how far
 * scheduling alone stretches a request, whatever the server does.
 */
export function machineNoise(): { p50: number; p99: number; max: number } {
  const times: number[] = [];
  let sink = 0;
  for (let i = 0; i < 2000; i++) {
    const t = performance.now();
    for (let j = 0; j < 160_000; j++) sink += Math.sqrt(j ^ i);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const q = (f: number) => +times[Math.floor(f * (times.length - 1))]!.toFixed(2);
  if (!Number.isFinite(sink)) throw new Error('unreachable: keeps the loop from being optimised away');
  return { p50: q(0.5), p99: q(0.99), max: q(1) };
}
