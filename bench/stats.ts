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
