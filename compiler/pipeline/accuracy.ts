/**
 * How an accuracy is printed, everywhere the compiler prints one: the report's tables, the
 * compile log, `facet subtasks list`. One rounding, so a number never reads 92.8 in one place
 * and 92.9 in the next.
 */
import type { EvalSummary } from './evaluate.ts';

/**
 * An accuracy in points, rounded half up to one decimal on the decimal value (the 1e-9
 * absorbs a product like 1000 × 0.9285 landing a hair under 928.5). `toFixed` alone rounds
 * the binary value: 1,857 of 2,000 printed 92.8 in one table and 92.9 in the next.
 */
export const accuracyPoints = (v: number): number => Math.round(1000 * v + 1e-9) / 10;

/** An accuracy as points with one decimal ("92.9"); a missing one (null, undefined) as "—". */
export const formatPoints = (v: number | null | undefined): string => (v === null || v === undefined ? '—' : accuracyPoints(v).toFixed(1));

/** Accuracy averaged over clean images and the four degradations (each counted once); null if a cell is missing. */
export function meanCleanAndDegraded(s: EvalSummary | undefined): number | null {
  return !s || s.clean === null || s.degradedMean === null ? null : (s.clean + 4 * s.degradedMean) / 5;
}
