/**
 * Optimizers on tf.Variables with explicit, serializable state, following PyTorch's update
 * equations (torch.optim.SGD and torch.optim.RAdam, single-tensor path) so recipes written
 * for PyTorch mean the same here. State round-trips through {@link OptimizerState}
 * bit-exactly, which is what makes a resumed run identical to an uninterrupted one.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HostTensor } from '../graph/ir.ts';

export interface SgdConfig {
  kind: 'sgd';
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  /**
   * false (default, torch.optim.SGD): L2, wd·p is added to the gradient before momentum.
   * true (SGDW): p ← p·(1 − lr·wd) before the step, outside the momentum buffer.
   */
  decoupledWeightDecay?: boolean;
}

export interface RadamConfig {
  kind: 'radam';
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** false (default, as torch.optim.RAdam): L2 added to the gradient; true: p ← p·(1 − lr·wd). */
  decoupledWeightDecay?: boolean;
}

export type OptimizerConfig = SgdConfig | RadamConfig;

/** Everything an optimizer needs to continue exactly where it stopped. */
export interface OptimizerState {
  kind: OptimizerConfig['kind'];
  /** Number of updates applied so far. */
  step: number;
  /** Per-parameter buffers keyed `<param key>#<slot>` (e.g. `conv1/kernel#momentum`). */
  slots: Map<string, HostTensor>;
}

export interface Optimizer {
  readonly config: OptimizerConfig;
  readonly step: number;
  /** One update of every variable that has a gradient, with learning rate `lr`. */
  apply(vars: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void;
  /** Asynchronous: webgpu in Node has no synchronous GPU reads. */
  getState(): Promise<OptimizerState>;
  setState(state: OptimizerState): void;
  dispose(): void;
}

export function createOptimizer(config: OptimizerConfig): Optimizer {
  validateOptimizer(config);
  switch (config.kind) {
    case 'sgd':
      return new Sgd(config);
    case 'radam':
      return new Radam(config);
    default:
      throw new Error(`unknown optimizer kind "${(config as { kind: string }).kind}" (expected sgd or radam)`);
  }
}

/** Slot buffers as tf.Variables, created lazily (zeros or a first value) per parameter. */
abstract class SlotOptimizer {
  protected slots = new Map<string, tf.Variable>();
  protected steps = 0;

  get step(): number {
    return this.steps;
  }

  protected slot(key: string): tf.Variable | undefined {
    return this.slots.get(key);
  }

  protected setSlot(key: string, value: tf.Tensor): void {
    const existing = this.slots.get(key);
    if (existing) existing.assign(value);
    else this.slots.set(key, tf.variable(value, false));
  }

  async getState(): Promise<OptimizerState> {
    const slots = new Map<string, HostTensor>();
    for (const [key, v] of this.slots) slots.set(key, { shape: [...v.shape], data: new Float32Array(await v.data()) });
    return { kind: this.kind, step: this.steps, slots };
  }

  setState(state: OptimizerState): void {
    if (state.kind !== this.kind) throw new Error(`optimizer state is for "${state.kind}", this optimizer is "${this.kind}"`);
    this.dispose();
    this.steps = state.step;
    for (const [key, t] of state.slots) this.setSlot(key, tf.tensor(t.data, t.shape, 'float32'));
  }

  dispose(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
  }

  protected abstract readonly kind: OptimizerConfig['kind'];
}

class Sgd extends SlotOptimizer implements Optimizer {
  protected readonly kind = 'sgd' as const;
  private readonly momentum: number;
  private readonly dampening: number;
  private readonly nesterov: boolean;
  private readonly weightDecay: number;
  private readonly decoupled: boolean;

  constructor(readonly config: SgdConfig) {
    super();
    this.momentum = config.momentum ?? 0;
    this.dampening = config.dampening ?? 0;
    this.nesterov = config.nesterov ?? false;
    this.weightDecay = config.weightDecay ?? 0;
    this.decoupled = config.decoupledWeightDecay ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new Error('sgd: nesterov needs momentum > 0 and dampening 0 (as in PyTorch)');
    }
  }

  apply(vars: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void {
    const { momentum, dampening, nesterov, weightDecay, decoupled } = this;
    tf.tidy(() => {
      for (const [key, grad] of grads) {
        const p = mustGet(vars, key);
        let param: tf.Tensor = p;
        let d: tf.Tensor = grad;
        if (weightDecay !== 0) {
          if (decoupled) param = tf.mul(param, 1 - lr * weightDecay);
          else d = tf.add(d, tf.mul(p, weightDecay));
        }
        if (momentum !== 0) {
          const slotKey = `${key}#momentum`;
          const prev = this.slot(slotKey);
          // PyTorch: the first step initialises the buffer to the gradient itself (no dampening).
          const buf = prev ? tf.add(tf.mul(prev, momentum), tf.mul(d, 1 - dampening)) : tf.clone(d);
          this.setSlot(slotKey, buf);
          d = nesterov ? tf.add(d, tf.mul(buf, momentum)) : buf;
        }
        p.assign(tf.sub(param, tf.mul(d, lr)));
      }
    });
    this.steps++;
  }
}

class Radam extends SlotOptimizer implements Optimizer {
  protected readonly kind = 'radam' as const;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;
  private readonly decoupled: boolean;

  constructor(readonly config: RadamConfig) {
    super();
    this.beta1 = config.beta1 ?? 0.9;
    this.beta2 = config.beta2 ?? 0.999;
    this.eps = config.eps ?? 1e-8;
    this.weightDecay = config.weightDecay ?? 0;
    this.decoupled = config.decoupledWeightDecay ?? false;
  }

  apply(vars: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void {
    const { beta1, beta2, eps, weightDecay, decoupled } = this;
    const { bc1, bc2, rectified, rect } = radamCoefficients(this.steps + 1, beta1, beta2);
    tf.tidy(() => {
      for (const [key, grad] of grads) {
        const p = mustGet(vars, key);
        let param: tf.Tensor = p;
        let g: tf.Tensor = grad;
        if (weightDecay !== 0) {
          if (decoupled) param = tf.mul(param, 1 - lr * weightDecay);
          else g = tf.add(g, tf.mul(p, weightDecay));
        }
        const mKey = `${key}#exp_avg`;
        const vKey = `${key}#exp_avg_sq`;
        const mPrev = this.slot(mKey) ?? tf.zerosLike(g);
        const vPrev = this.slot(vKey) ?? tf.zerosLike(g);
        // exp_avg.lerp_(grad, 1 − β1); exp_avg_sq.mul_(β2).addcmul_(grad, grad, 1 − β2)
        const m = tf.add(mPrev, tf.mul(tf.sub(g, mPrev), 1 - beta1));
        const v = tf.add(tf.mul(vPrev, beta2), tf.mul(tf.mul(g, g), 1 - beta2));
        this.setSlot(mKey, m);
        this.setSlot(vKey, v);
        const mHat = tf.div(m, bc1);
        const update = rectified
          ? tf.mul(tf.mul(tf.mul(mHat, lr), tf.div(Math.sqrt(bc2), tf.add(tf.sqrt(v), eps))), rect)
          : tf.mul(mHat, lr);
        p.assign(tf.sub(param, update));
      }
    });
    this.steps++;
  }
}

/**
 * RAdam's step-dependent scalars for update number t (1-based), in float64 as PyTorch
 * computes them on the host: bias corrections, whether the variance is rectified yet
 * (ρ_t > 5), and the rectification factor.
 */
export function radamCoefficients(t: number, beta1: number, beta2: number): { bc1: number; bc2: number; rectified: boolean; rect: number } {
  const bc1 = 1 - beta1 ** t;
  const bc2 = 1 - beta2 ** t;
  const rhoInf = 2 / (1 - beta2) - 1;
  const rhoT = rhoInf - (2 * t * beta2 ** t) / bc2;
  const rectified = rhoT > 5;
  const rect = rectified ? Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT)) : 0;
  return { bc1, bc2, rectified, rect };
}

function mustGet(vars: Map<string, tf.Variable>, key: string): tf.Variable {
  const v = vars.get(key);
  if (!v) throw new Error(`optimizer: gradient for "${key}" but no such variable`);
  return v;
}

/** Checks an optimizer config's numbers; throws naming the field. */
export function validateOptimizer(config: OptimizerConfig, where = 'optimizer'): void {
  const check = (field: string, v: number | undefined, ok: (v: number) => boolean, what: string) => {
    if (v !== undefined && !(Number.isFinite(v) && ok(v))) throw new Error(`${where}.${field}: must be ${what}, got ${v}`);
  };
  check('weightDecay', config.weightDecay, (v) => v >= 0, 'a non-negative number');
  if (config.kind === 'sgd') {
    check('momentum', config.momentum, (v) => v >= 0 && v < 1, 'in [0, 1)');
    check('dampening', config.dampening, (v) => v >= 0 && v <= 1, 'in [0, 1]');
  } else if (config.kind === 'radam') {
    check('beta1', config.beta1, (v) => v >= 0 && v < 1, 'in [0, 1)');
    check('beta2', config.beta2, (v) => v >= 0 && v < 1, 'in [0, 1)');
    check('eps', config.eps, (v) => v > 0, 'a positive number');
  }
}
