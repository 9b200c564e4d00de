/**
 * Seeded random numbers that give the same sequence in every JS runtime (Node, Workers,
 * Deno, Bun, browsers): sfc32 (a 128-bit state chaotic generator) seeded by splitmix32.
 *
 * Only integer ops, +, −, ×, ÷ and Math.sqrt (all exactly specified by IEEE 754) are used:
 * `gaussian()` is the Marsaglia polar method over our own `ln` instead of Math.log/cos,
 * whose last bits differ between engines. So even rounded AWGN is identical everywhere.
 */

const TWO_POW_32 = 4294967296;

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

const LN2 = 0.6931471805599453;
const SQRT2 = 1.4142135623730951;
/** 1/(2k+1) for k = 0..11: the atanh series' coefficients. */
const ATANH_COEFFS = Array.from({ length: 12 }, (_, k) => 1 / (2 * k + 1));

// Reading a double's exponent through its bits is exact and engine-independent.
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
const HI = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1 ? 1 : 0; // little-endian: high word second

/** Natural log for x > 0 from exactly-rounded arithmetic only (error ≲ 2 ulp). */
export function portableLog(x: number): number {
  if (!(x > 0) || x === Infinity) {
    if (x === 0) return -Infinity;
    if (x === Infinity) return Infinity;
    return NaN;
  }
  // x = m · 2^k with m in [√½, √2): set the exponent bits of x to 0 (m in [1, 2)), then fold.
  let scaled = x;
  let k = 0;
  if (scaled < 2.2250738585072014e-308) {
    scaled *= 18014398509481984; // 2^54: subnormals get an exponent field
    k = -54;
  }
  f64[0] = scaled;
  const hi = u32[HI]!;
  k += ((hi >>> 20) & 0x7ff) - 1023;
  u32[HI] = (hi & 0x800fffff) | 0x3ff00000;
  let m = f64[0]!;
  if (m >= SQRT2) {
    m *= 0.5;
    k++;
  }
  // ln m = 2·atanh(z), z = (m−1)/(m+1) in [−0.172, 0.172]; 12 odd terms reach 1e-17.
  const z = (m - 1) / (m + 1);
  const z2 = z * z;
  let sum = ATANH_COEFFS[11]!;
  for (let i = 10; i >= 0; i--) sum = ATANH_COEFFS[i]! + z2 * sum;
  return k * LN2 + 2 * z * sum;
}

export class Rng {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;
  /** Second normal of the last polar-method pair, or NaN when none is cached. */
  private spare = NaN;

  /** Any finite integer seed (negative and > 2^32 seeds are fine; all 53 bits matter). */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`Rng seed must be a safe integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    this.seedWords(lo, hi, 0);
  }

  private seedWords(lo: number, hi: number, stream: number): void {
    // Each input goes through a bijective mix into its own word, so distinct
    // (lo, hi, stream) triples always give distinct starting states.
    const sm = { s: lo };
    this.a = splitmix32(sm);
    this.b = splitmix32(sm) ^ splitmix32({ s: hi ^ 0x6a09e667 });
    this.c = splitmix32(sm) ^ splitmix32({ s: stream ^ 0xbb67ae85 });
    this.d = 1;
    this.spare = NaN;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** Uniform integer in [0, 2^32). */
  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  float(): number {
    return this.nextU32() / TWO_POW_32;
  }

  /** Uniform integer in [lo, hi], both inclusive; unbiased (rejection sampling). */
  int(lo: number, hi: number): number {
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi < lo) {
      throw new RangeError(`Rng.int needs integers lo <= hi, got ${lo}, ${hi}`);
    }
    const span = hi - lo + 1;
    if (span > TWO_POW_32) throw new RangeError(`Rng.int range ${span} exceeds 2^32`);
    if (span === TWO_POW_32) return lo + this.nextU32();
    // Largest multiple of span below 2^32; draws above it would bias the low values.
    const limit = TWO_POW_32 - (TWO_POW_32 % span);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return lo + (x % span);
  }

  /** Standard normal (mean 0, variance 1). */
  gaussian(): number {
    if (this.spare === this.spare) {
      const s = this.spare;
      this.spare = NaN;
      return s;
    }
    let u: number, v: number, s: number;
    do {
      u = this.nextU32() / 2147483648 - 1;
      v = this.nextU32() / 2147483648 - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = Math.sqrt((-2 * portableLog(s)) / s);
    this.spare = v * f;
    return u * f;
  }

  /**
   * Fill `out` with standard normals: the same values, and the same generator state after,
   * as calling gaussian() out.length times. Faster for bulk noise (AWGN on a batch).
   */
  fillGaussian(out: Float64Array | Float32Array): void {
    let i = 0;
    const n = out.length;
    if (n === 0) return;
    if (this.spare === this.spare) {
      out[i++] = this.spare;
      this.spare = NaN;
    }
    let a = this.a, b = this.b, c = this.c, d = this.d;
    while (i < n) {
      let u: number, v: number, s: number;
      do {
        // Two inlined sfc32 steps (see nextU32).
        let t = (((a + b) | 0) + d) | 0;
        d = (d + 1) | 0;
        a = b ^ (b >>> 9);
        b = (c + (c << 3)) | 0;
        c = ((c << 21) | (c >>> 11)) + t | 0;
        u = (t >>> 0) / 2147483648 - 1;
        t = (((a + b) | 0) + d) | 0;
        d = (d + 1) | 0;
        a = b ^ (b >>> 9);
        b = (c + (c << 3)) | 0;
        c = ((c << 21) | (c >>> 11)) + t | 0;
        v = (t >>> 0) / 2147483648 - 1;
        s = u * u + v * v;
      } while (s >= 1 || s === 0);
      const f = Math.sqrt((-2 * portableLog(s)) / s);
      out[i++] = u * f;
      if (i < n) out[i++] = v * f;
      else this.spare = v * f;
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }

  /** The full state, JSON-safe; `setState` restores the exact sequence (checkpoints). */
  getState(): number[] {
    const words = [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0];
    return this.spare === this.spare ? [...words, this.spare] : words;
  }

  setState(state: number[]): void {
    if (!Array.isArray(state) || (state.length !== 4 && state.length !== 5)) {
      throw new RangeError(`Rng state must be an array of 4 or 5 numbers, got ${JSON.stringify(state)}`);
    }
    for (let i = 0; i < 4; i++) {
      const w = state[i];
      if (!Number.isInteger(w) || w < 0 || w >= TWO_POW_32) throw new RangeError(`Rng state word ${i} must be a uint32, got ${w}`);
    }
    if (state.length === 5 && !Number.isFinite(state[4])) throw new RangeError(`Rng state spare normal must be finite, got ${state[4]}`);
    this.a = state[0]! | 0;
    this.b = state[1]! | 0;
    this.c = state[2]! | 0;
    this.d = state[3]! | 0;
    this.spare = state.length === 5 ? state[4]! : NaN;
  }

  /**
   * An independent generator for sub-stream `stream` (e.g. one per worker, per epoch or
   * per degradation level). Depends on this generator's current state and `stream` only;
   * it does not advance this generator, so fork(k) is reproducible.
   */
  fork(stream: number): Rng {
    if (!Number.isInteger(stream) || stream < 0 || stream >= TWO_POW_32) {
      throw new RangeError(`Rng.fork stream must be a uint32, got ${stream}`);
    }
    const child = new Rng(0); // re-seeded below; constructing keeps one object shape for the JIT
    const mixed = (this.a ^ Math.imul(this.b, 0x9e3779b1) ^ Math.imul(this.c, 0x85ebca77) ^ Math.imul(this.d, 0xc2b2ae3d)) >>> 0;
    child.seedWords(mixed, (this.b ^ this.c) >>> 0, (stream + 1) >>> 0);
    return child;
  }
}
