/** Summary statistics the benchmark scripts print over seeds or rounds. */

export const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Sample standard deviation (n − 1); 0 for fewer than two values. */
export const sampleSd = (xs: readonly number[]): number => {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

/** Median (the mean of the middle two for an even count). */
export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
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
