/**
 * Optimizers against PyTorch's update equations on f(p) = ½·Σ a_i·p_i², a = [1, 3],
 * p₀ = [1, −2], so ∇f = a ⊙ p. Expected values are written out; the first steps are
 * derived by hand below, later ones by iterating the same equations in float64.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../compiler/tf/backend.ts';
import { type OptimizerConfig, createOptimizer } from '../../compiler/train/optimizers.ts';

beforeAll(async () => {
  await initBackend('cpu');
});

const A = [1, 3];

/** Runs `steps` updates at a constant lr; returns p after each step. */
function run(config: OptimizerConfig, steps: number, lr = 0.1): number[][] {
  const p = tf.variable(tf.tensor1d([1, -2]));
  const vars = new Map([['w', p]]);
  const opt = createOptimizer(config);
  const out: number[][] = [];
  for (let t = 0; t < steps; t++) {
    const g = tf.tidy(() => tf.mul(p, tf.tensor1d(A)));
    opt.apply(vars, new Map([['w', g]]), lr);
    g.dispose();
    out.push([...p.dataSync()]);
  }
  opt.dispose();
  p.dispose();
  return out;
}

function expectClose(actual: number[][], expected: number[][]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, t) => row.forEach((v, i) => expect(v, `step ${t + 1}, p[${i}]`).toBeCloseTo(expected[t]![i]!, 5)));
}

describe('SGD (torch.optim.SGD semantics)', () => {
  it('momentum 0.9 with L2 weight decay 0.1', () => {
    // step 1: g = [1, −6]; d = g + 0.1·p = [1.1, −6.2]; buf = d (first step: no dampening)
    //         p = p − 0.1·buf = [0.89, −1.38]
    // step 2: g = [0.89, −4.14]; d = [0.979, −4.278]; buf = 0.9·[1.1, −6.2] + d = [1.969, −9.858]
    //         p = [0.89 − 0.1969, −1.38 + 0.9858] = [0.6931, −0.3942]
    // step 3: (same equations) [0.439649, 0.615222]
    expectClose(run({ kind: 'sgd', momentum: 0.9, weightDecay: 0.1 }, 3), [
      [0.89, -1.38],
      [0.6931, -0.3942],
      [0.439649, 0.615222],
    ]);
  });

  it('Nesterov momentum uses d + μ·buf', () => {
    // step 1: d = [1.1, −6.2]; buf = d; d' = d + 0.9·buf = [2.09, −11.78]; p = [0.791, −0.822]
    // step 2: g = [0.791, −2.466]; d = g + 0.1·p = [0.8701, −2.5482]
    //         buf = 0.9·[1.1, −6.2] + d = [1.8601, −8.1282]; d' = d + 0.9·buf = [2.54419, −9.86358]
    //         p = [0.536581, 0.164358]
    expectClose(run({ kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0.1 }, 3), [
      [0.791, -0.822],
      [0.536581, 0.164358],
      [0.27376747, 0.72593534],
    ]);
  });

  it('decoupled weight decay shrinks p outside the momentum buffer', () => {
    // step 1: p·(1 − 0.1·0.1) = [0.99, −1.98]; buf = g = [1, −6]; p = [0.99 − 0.1, −1.98 + 0.6] = [0.89, −1.38]
    // step 2: p·0.99 = [0.8811, −1.3662]; g = [0.89, −4.14]; buf = 0.9·[1, −6] + g = [1.79, −9.54]
    //         p = [0.8811 − 0.179, −1.3662 + 0.954] = [0.7021, −0.4122]
    expectClose(run({ kind: 'sgd', momentum: 0.9, weightDecay: 0.1, decoupledWeightDecay: true }, 3), [
      [0.89, -1.38],
      [0.7021, -0.4122],
      [0.463769, 0.574182],
    ]);
  });

  it('plain SGD is p − lr·g', () => {
    // p₁ = [1 − 0.1, −2 + 0.6] = [0.9, −1.4]; p₂ = [0.9 − 0.09, −1.4 + 0.42] = [0.81, −0.98]
    expectClose(run({ kind: 'sgd' }, 2), [
      [0.9, -1.4],
      [0.81, -0.98],
    ]);
  });

  it('rejects nesterov without momentum and out-of-range numbers, naming the field', () => {
    expect(() => createOptimizer({ kind: 'sgd', nesterov: true })).toThrow(/nesterov needs momentum/);
    expect(() => createOptimizer({ kind: 'sgd', momentum: 1.5 })).toThrow(/optimizer\.momentum: must be in \[0, 1\), got 1\.5/);
    expect(() => createOptimizer({ kind: 'radam', weightDecay: -1 })).toThrow(/optimizer\.weightDecay: must be a non-negative number/);
    expect(() => createOptimizer({ kind: 'radam', beta2: 1 })).toThrow(/optimizer\.beta2/);
    expect(() => createOptimizer({ kind: 'adam' } as unknown as OptimizerConfig)).toThrow(/unknown optimizer kind "adam"/);
  });
});

describe('RAdam (torch.optim.RAdam semantics, L2 weight decay)', () => {
  it('takes SGD-with-momentum steps while ρ_t ≤ 5, then rectified adaptive steps', () => {
    // β1 = 0.9, β2 = 0.999, ε = 1e-8, lr = 0.1, wd = 0.1; ρ∞ = 2/(1 − β2) − 1 = 1999.
    // step 1: g = a⊙p + 0.1·p = [1.1, −6.2]; m = 0.1·g = [0.11, −0.62]; m̂ = m/(1 − 0.9) = [1.1, −6.2]
    //         ρ₁ = ρ∞ − 2·1·β2/(1 − β2) = 1999 − 1998 = 1 ≤ 5, so p = p − lr·m̂ = [0.89, −1.38]
    // ρ₂..ρ₅ = 1.9995, 2.9987, 3.9975, 4.9960 (same un-rectified update);
    // ρ₆ = 5.9942 > 5: p −= lr·m̂·r·√(1 − β2⁶)/(√v + ε), r = √((ρ−4)(ρ−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρ)).
    expectClose(run({ kind: 'radam', weightDecay: 0.1 }, 8), [
      [0.89, -1.38],
      [0.78636842, -0.86115789],
      [0.68905826, -0.4352616],
      [0.59800392, -0.09397281],
      [0.51312132, 0.17108897],
      [0.51070031, 0.17262485],
      [0.50767735, 0.17421258],
      [0.50414009, 0.17573764],
    ]);
  });
});

describe('optimizer state', () => {
  it('round-trips: a restored optimizer continues bit-identically', async () => {
    for (const config of [{ kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 5e-4 }, { kind: 'radam', weightDecay: 1e-4 }] as OptimizerConfig[]) {
      const straight = run(config, 9, 0.05);
      // Run 4 steps, snapshot, restore into a fresh optimizer and parameter, run 5 more.
      const p = tf.variable(tf.tensor1d([1, -2]));
      const vars = new Map([['w', p]]);
      const first = createOptimizer(config);
      const step = (opt: ReturnType<typeof createOptimizer>, v: tf.Variable) => {
        const g = tf.tidy(() => tf.mul(v, tf.tensor1d(A)));
        opt.apply(new Map([['w', v]]), new Map([['w', g]]), 0.05);
        g.dispose();
      };
      for (let t = 0; t < 4; t++) step(first, p);
      const snapshot = await first.getState();
      const saved = Float32Array.from(p.dataSync());
      first.dispose();
      p.dispose();
      vars.clear();
      const second = createOptimizer(config);
      second.setState(snapshot);
      expect(second.step).toBe(4);
      const q = tf.variable(tf.tensor1d(saved));
      for (let t = 0; t < 5; t++) step(second, q);
      expect(Float32Array.from(q.dataSync())).toEqual(Float32Array.from(straight[8]!));
      second.dispose();
      q.dispose();
    }
  });

  it('refuses state of another optimizer kind', async () => {
    const state = await createOptimizer({ kind: 'sgd', momentum: 0.9 }).getState();
    expect(() => createOptimizer({ kind: 'radam' }).setState(state)).toThrow(/state is for "sgd"/);
  });
});
