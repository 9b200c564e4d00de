/**
 * A seeded random source for the graph/nn/onnx tests (mulberry32 + Box–Muller), so these
 * tests do not depend on shared/rng.ts's exact stream.
 */
export class TestRng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  nextU32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  float(): number {
    return this.nextU32() / 4294967296;
  }
  gaussian(): number {
    const u = 1 - this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.float());
  }
  /** n values uniform in [lo, hi). */
  uniform(n: number, lo: number, hi: number): Float32Array {
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = lo + (hi - lo) * this.float();
    return d;
  }
}
