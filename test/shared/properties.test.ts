/** Invariants over random shapes and levels (fast-check, fixed seed so CI is reproducible), beyond the reference images. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEGRADATION_LEVELS, degrade, jpegRoundTrip, quantTable } from '../../shared/degrade.ts';
import { DEGRADATION_KINDS } from '../../shared/manifest.ts';
import { resizeBilinear, toChannels } from '../../shared/preprocess.ts';
import { Rng } from '../../shared/rng.ts';

const shape = fc.record({
  w: fc.integer({ min: 1, max: 40 }),
  h: fc.integer({ min: 1, max: 40 }),
  c: fc.constantFrom(1 as const, 3 as const, 4 as const),
  seed: fc.integer({ min: 0, max: 2 ** 31 }),
});

function randomImage(w: number, h: number, c: 1 | 3 | 4, seed: number) {
  const rng = new Rng(seed);
  return { width: w, height: h, channels: c, data: new Uint8Array(w * h * c).map(() => rng.int(0, 255)) };
}

describe('properties', () => {
  it('constant images stay constant under blur and resize, and JPEG keeps gray ones flat within half a DC step', () => {
    fc.assert(
      fc.property(shape, fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 60 }), ({ w, h, c }, v, level, tw, th) => {
        const img = { width: w, height: h, channels: c, data: new Uint8Array(w * h * c).fill(v) };
        expect(degrade(img, 'blur', level, new Rng(0)).data.every((x) => x === v)).toBe(true);
        expect(resizeBilinear(img, tw, th).data.every((x) => x === v)).toBe(true);
        // A flat block has only a DC coefficient, reconstructed in steps of qDC/8 grey levels:
        // it stays flat and moves by at most half a step (plus one for integer rounding).
        if (c === 1) {
          const out = degrade(img, 'jpeg', level, new Rng(0)).data;
          expect(out.every((x) => x === out[0])).toBe(true);
          expect(Math.abs(out[0]! - v)).toBeLessThanOrEqual(quantTable(level, false)[0]! / 16 + 1);
        }
      }),
      { numRuns: 60, seed: 20261126 },
    );
  });

  it('every degradation is deterministic and keeps shape for any size, channel count and level', () => {
    fc.assert(
      fc.property(shape, fc.constantFrom(...DEGRADATION_KINDS), fc.double({ min: 0, max: 1, noNaN: true }), ({ w, h, c, seed }, kind, t) => {
        const { min, max } = DEGRADATION_LEVELS[kind];
        const level = Math.min(max, min + Math.floor(t * (max - min + 1)));
        const img = randomImage(w, h, c, seed);
        const a = degrade(img, kind, level, new Rng(seed));
        const b = degrade(img, kind, level, new Rng(seed));
        expect(a.data).toEqual(b.data);
        expect(a.data.length).toBe(w * h * c);
      }),
      { numRuns: 80, seed: 20261126 },
    );
  });

  it('the JPEG round trip works in place (source and destination the same array)', () => {
    fc.assert(
      fc.property(shape, fc.integer({ min: 1, max: 100 }), ({ w, h, c, seed }, q) => {
        const img = randomImage(w, h, c, seed);
        const out = new Uint8Array(img.data.length);
        jpegRoundTrip(img.data, out, w, h, c, q);
        const inPlace = img.data.slice();
        jpegRoundTrip(inPlace, inPlace, w, h, c, q);
        expect(inPlace).toEqual(out);
      }),
      { numRuns: 40, seed: 20261126 },
    );
  });

  it('gray conversion of a gray-replicated RGB image is the identity', () => {
    fc.assert(
      fc.property(shape, ({ w, h, seed }) => {
        const gray = randomImage(w, h, 1, seed);
        expect(toChannels(toChannels(gray, 3), 1).data).toEqual(gray.data);
      }),
      { numRuns: 30, seed: 20261126 },
    );
  });
});
