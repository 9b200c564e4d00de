/**
 * Prints a fingerprint of shared/'s random streams and degradations as JSON. The
 * cross-runtime test runs this file in Node, Deno and Bun and requires identical output.
 */
import { DEGRADATION_LEVELS, degradeBatch } from '../../shared/degrade.ts';
import { DEGRADATION_KINDS } from '../../shared/manifest.ts';
import { resizeBilinear } from '../../shared/preprocess.ts';
import { Rng } from '../../shared/rng.ts';

function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

export function fingerprint(): Record<string, unknown> {
  const rng = new Rng(2024);
  const u32 = Array.from({ length: 8 }, () => rng.nextU32());
  const fork = Array.from({ length: 4 }, () => rng.fork(3).nextU32());
  const normals = new Float64Array(4096);
  rng.fillGaussian(normals);
  const shapes = [[8, 28, 28, 1], [4, 32, 32, 3], [2, 10, 12, 4]] as const;
  const degraded: Record<string, string> = {};
  for (const [n, h, w, c] of shapes) {
    const images = new Uint8Array(n * h * w * c).map(() => rng.int(0, 255));
    for (const kind of DEGRADATION_KINDS) {
      const { min, max } = DEGRADATION_LEVELS[kind];
      const levels = Array.from({ length: n }, () => rng.int(min, max));
      degraded[`${kind} ${h}x${w}x${c}`] = fnv1a(degradeBatch(images, n, h, w, c, kind, levels, rng));
    }
    degraded[`resize ${h}x${w}x${c}`] = fnv1a(resizeBilinear({ width: w, height: h, channels: c, data: images.subarray(0, h * w * c) }, 17, 9).data);
  }
  return { u32, fork, normals: fnv1a(new Uint8Array(normals.buffer)), normalSample: Array.from(normals.subarray(0, 4)), degraded };
}

// Run directly (deno run / bun / tsx): print the fingerprint.
if (import.meta.url === `file://${(globalThis as { process?: { argv: string[] } }).process?.argv?.[1] ?? ''}` || (globalThis as { Deno?: unknown }).Deno) {
  console.log(JSON.stringify(fingerprint()));
}
