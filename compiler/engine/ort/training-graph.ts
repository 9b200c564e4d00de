/**
 * The model graph's training step as plain ONNX: forward in training mode, the loss of an
 * {@link Objective}, a hand-derived backward pass, and (in `step` mode) the optimizer
 * update, all in one graph that any onnxruntime build runs (no training build, no custom
 * operators). Parameters, optimizer slots and running statistics are graph inputs; their
 * next values are graph outputs, fed back in by the engine at the next step.
 *
 * Layout: activations are NCHW inside the graph (onnxruntime's native conv layout); the
 * host's NHWC batch is transposed once at the input. Conv kernels are OIHW here and HWIO in
 * a ParamStore; compiler/engine/ort/layout.ts converts at the boundary.
 *
 * Backward rules, per layer kind (dY: the gradient of the layer's output):
 *   conv       dX = ConvTranspose(dY, W) with the forward's stride and padding and the
 *              output padding that restores X's size; dW = a convolution of X by dY
 *              (see {@link ConvWeightGradient}); db = Σ dY over N, H, W
 *   bn         (batch statistics) dX = γσ⁻¹·(dY − mean dY − x̂·mean(dY·x̂)), dγ = Σ dY·x̂, dβ = Σ dY
 *   relu       dX = dY where Y > 0
 *   add        both inputs get dY
 *   maxpool    dY scattered (summed) to the argmax positions MaxPool reports
 *   avgpool    a depthwise ConvTranspose of dY/count with a kernel of ones
 *   gap        dY/(H·W) broadcast over H×W
 *   flatten    reshape (and the NHWC↔NCHW transpose where the orders differ)
 *   dense      dX = dY·Wᵀ, dW = Xᵀ·dY, db = Σ dY
 *   padshortcut  dY's own channels, spread back to every stride-th pixel
 */
import type { ConvLayer, Graph, Layer, PoolLayer } from '../../graph/ir.ts';
import { layerInputs, paramKey, TRAINABLE_PARAMS } from '../../graph/ir.ts';
import { type ActShape, inferShapes, inputLayer, isMap, poolWindowCounts, windowOut } from '../../graph/shapes.ts';
import { DT, encodeModel, float, GraphBuilder, int, ints, str } from '../../onnx/builder.ts';
import { COSINE_EPS, type Objective } from '../../train/objective.ts';
import { type OptimizerConfig, radamCoefficients } from '../../train/optimizers.ts';
import { ortParamShape } from './layout.ts';

/**
 * How a conv's weight gradient is computed (each has been measured; see
 * docs/training-engine.md):
 * - `conv`: a Conv of X (channels as the batch) by dY (as filters) with dilation = stride;
 * - `gemm`: one GEMM per kernel offset, of X's shifted view by dY, each over (N, pixels);
 * - `patches`: the k² shifted views stacked (im2col of the whole batch), then one GEMM;
 * - `flat` (stride 1): the batch's padded images laid end to end per channel, [Ci, N·Hp·Wp],
 *   so each kernel offset's view is one contiguous window of it; dY zero-padded to the same
 *   grid keeps the windows' spill from one image into the next out of the sums. Strided
 *   convs fall back to `gemm`.
 */
export type ConvWeightGradient = 'conv' | 'gemm' | 'patches' | 'flat';
export const CONV_WEIGHT_GRADIENTS: readonly ConvWeightGradient[] = ['conv', 'gemm', 'patches', 'flat'];

/**
 * How a conv's input gradient is computed: `convtranspose` (ConvTranspose of dY by W), or
 * for stride 1 `conv` (a forward Conv of dY by W flipped and transposed, padding k − 1 − p).
 */
export type ConvInputGradient = 'convtranspose' | 'conv';

/**
 * How BN in training mode is written: `elementwise` (x̂ = (x − μ)·σ⁻¹, then γx̂ + β, every
 * step its own Add/Sub/Mul) or `batchnorm` (onnxruntime's BatchNormalization kernel, fed the
 * batch statistics, does the per-channel affine maps in one pass each, forward and backward,
 * and the backward reads x − μ instead of a stored x̂).
 */
export type BnFormulation = 'elementwise' | 'batchnorm';

/**
 * Which kernel runs the forward convolutions and the stride-1 input gradients:
 * - `nchw`: the standard `Conv`. onnxruntime rewrites a Conv to its blocked NCHWc kernels
 *   only when the weights are constant initializers; ours are graph inputs, so it takes the
 *   generic im2col + GEMM path.
 * - `nchwc8`, `nchwc16`: the blocked kernels called directly (`com.microsoft.nchwc` Conv,
 *   CPU provider only): the activation reordered into channel blocks of 8 or 16 on the way
 *   in and back on the way out, the weights reordered in the graph every step. The block
 *   size is the machine's (MLAS: 16 with AVX-512, else 8), so the engine probes it
 *   ({@link probeNchwcBlock} in session.ts). A conv whose input channels neither fit in one
 *   block nor fill whole blocks keeps `Conv`.
 */
export type ConvKernel = 'nchw' | 'nchwc8' | 'nchwc16';
export const CONV_KERNELS: readonly ConvKernel[] = ['nchw', 'nchwc8', 'nchwc16'];
export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

/** The choices of how the training graph is written; each is measured in docs/training-engine.md. */
export interface GraphFormulation {
  convWeightGradient: ConvWeightGradient;
  convInputGradient: ConvInputGradient;
  bn: BnFormulation;
  convKernel: ConvKernel;
}

/**
 * The formulation the engine uses unless told otherwise (the fastest measured here).
 * `convKernel` stays `nchw` here, the form every provider runs; the engine switches the CPU
 * provider to the blocked kernels of the machine's block size.
 */
export const DEFAULT_FORMULATION: GraphFormulation = { convWeightGradient: 'flat', convInputGradient: 'conv', bn: 'batchnorm', convKernel: 'nchw' };

export interface TrainingGraphOptions extends Partial<GraphFormulation> {
  /** Images per run of this graph (static: onnxruntime plans memory once). */
  batch: number;
  objective: Objective;
  /**
   * `step`: the optimizer update is part of the graph; `gradients`: stop at the gradients;
   * `statistics`: the training-mode forward alone, reporting BN batch statistics.
   */
  mode: 'step' | 'gradients' | 'statistics';
  /** Required in `step` mode. */
  optimizer?: OptimizerConfig;
}

/** The graph's interface, for the engine that feeds it. */
export interface TrainingGraph {
  bytes: Uint8Array;
  /** Trainable parameter keys (`<layer>/<param>`), in graph order. */
  trainable: string[];
  /**
   * The trainable keys the loss reaches, which get gradients and updates; the others (say
   * the classifier under a feature-only objective) stay as they are, as in PyTorch, whose
   * optimizers skip parameters without a gradient.
   */
  updated: string[];
  /** BN running-statistic keys (`<bn>/mean`, `<bn>/variance`). */
  runningStats: string[];
  /** Optimizer slot keys (`<param key>#<slot>`), `step` mode only. */
  slots: string[];
  /** Scalar inputs fed every step (learning rate and the optimizer's step-dependent coefficients). */
  scalars: string[];
  /** Shapes of every parameter, slot and statistic, in onnxruntime layout. */
  shapes: Map<string, number[]>;
  /** Feature-target dims per sample (NHWC), when the objective has a feature term. */
  featureDims?: number[];
  classes: number;
}

export const STEP_OUTPUT = { loss: 'loss', predicted: 'predicted' } as const;
export const nextName = (key: string): string => `${key}.next`;
export const gradName = (key: string): string => `${key}.grad`;
export const batchStatName = (key: string): string => `${key}.batch`;

/** Slot names per optimizer, matching compiler/train/optimizers.ts so states move between engines. */
export function optimizerSlots(opt: OptimizerConfig): string[] {
  if (opt.kind === 'sgd') return (opt.momentum ?? 0) !== 0 ? ['momentum'] : [];
  return ['exp_avg', 'exp_avg_sq'];
}

/** The per-step scalar inputs of an optimizer's update. */
export function optimizerScalars(opt: OptimizerConfig): string[] {
  const decoupled = (opt.weightDecay ?? 0) !== 0 && opt.decoupledWeightDecay === true;
  const base = opt.kind === 'sgd' ? ['lr', ...((opt.momentum ?? 0) !== 0 ? ['sgd.buf_decay', 'sgd.grad_scale'] : [])] : ['radam.adaptive', 'radam.plain'];
  return decoupled ? [...base, 'decay_factor'] : base;
}

/**
 * Host-side values of {@link optimizerScalars} for the update number `step` (0-based),
 * in float64 as PyTorch computes them, mirroring compiler/train/optimizers.ts.
 */
export function optimizerScalarValues(opt: OptimizerConfig, step: number, lr: number): Record<string, number> {
  const out: Record<string, number> = {};
  if (opt.kind === 'sgd') {
    out.lr = lr;
    if ((opt.momentum ?? 0) !== 0) {
      // PyTorch: the first step initialises the buffer to the gradient itself.
      out['sgd.buf_decay'] = step === 0 ? 0 : opt.momentum!;
      out['sgd.grad_scale'] = step === 0 ? 1 : 1 - (opt.dampening ?? 0);
    }
  } else {
    const { bc1, bc2, rectified, rect } = radamCoefficients(step + 1, opt.beta1 ?? 0.9, opt.beta2 ?? 0.999);
    out['radam.adaptive'] = rectified ? (lr * rect * Math.sqrt(bc2)) / bc1 : 0;
    out['radam.plain'] = rectified ? 0 : lr / bc1;
  }
  if ((opt.weightDecay ?? 0) !== 0 && opt.decoupledWeightDecay === true) out.decay_factor = 1 - lr * opt.weightDecay!;
  return out;
}

function checkFormulation(o: Partial<GraphFormulation>): void {
  const check = (name: string, v: string | undefined, allowed: readonly string[]) => {
    if (v !== undefined && !allowed.includes(v)) throw new Error(`training graph: ${name} must be ${allowed.join(', ')}, got "${v}"`);
  };
  check('convWeightGradient', o.convWeightGradient, CONV_WEIGHT_GRADIENTS);
  check('convInputGradient', o.convInputGradient, ['convtranspose', 'conv']);
  check('bn', o.bn, ['elementwise', 'batchnorm']);
  check('convKernel', o.convKernel, CONV_KERNELS);
}

const definedOnly = (o: Partial<GraphFormulation>): Partial<GraphFormulation> =>
  Object.fromEntries(Object.entries({ convWeightGradient: o.convWeightGradient, convInputGradient: o.convInputGradient, bn: o.bn, convKernel: o.convKernel }).filter(([, v]) => v !== undefined));

/** NCHW (or [N, F]) dims of a per-sample NHWC activation shape. */
const batchDims = (n: number, s: ActShape): number[] => (isMap(s) ? [n, s[2], s[0], s[1]] : [n, s[0]]);

/**
 * Emits the optimizer update of one parameter: `param` and `grad` in, the next parameter
 * (and slots) out under {@link nextName}. Shared by the fused step graph and the update
 * graph of data-parallel training.
 */
export function emitUpdate(b: GraphBuilder, opt: OptimizerConfig, key: string, param: string, grad: string, slotInput: (slot: string) => string): void {
  const wd = opt.weightDecay ?? 0;
  const decoupled = wd !== 0 && opt.decoupledWeightDecay === true;
  let g = grad;
  if (wd !== 0 && !decoupled) g = b.op1('Add', [g, b.op1('Mul', [param, b.scalar(wd)], `${key}.wd`)], `${key}.g`);
  const base = decoupled ? b.op1('Mul', [param, 'decay_factor'], `${key}.decayed`) : param;
  let step: string;
  if (opt.kind === 'sgd') {
    const momentum = opt.momentum ?? 0;
    let d = g;
    if (momentum !== 0) {
      const slot = `${key}#momentum`;
      const buf = b.op1('Add', [b.op1('Mul', [slotInput(slot), 'sgd.buf_decay'], `${slot}.decayed`), b.op1('Mul', [g, 'sgd.grad_scale'], `${slot}.in`)], `${slot}.sum`);
      b.op1('Identity', [buf], `${slot}.id`, [], nextName(slot));
      d = opt.nesterov ? b.op1('Add', [g, b.op1('Mul', [buf, b.scalar(momentum)], `${key}.nest`)], `${key}.d`) : buf;
    }
    step = b.op1('Mul', [d, 'lr'], `${key}.step`);
  } else {
    const beta1 = opt.beta1 ?? 0.9;
    const beta2 = opt.beta2 ?? 0.999;
    const eps = opt.eps ?? 1e-8;
    const mSlot = `${key}#exp_avg`;
    const vSlot = `${key}#exp_avg_sq`;
    const mPrev = slotInput(mSlot);
    const vPrev = slotInput(vSlot);
    // exp_avg.lerp_(grad, 1 − β1); exp_avg_sq.mul_(β2).addcmul_(grad, grad, 1 − β2)
    const m = b.op1('Add', [mPrev, b.op1('Mul', [b.op1('Sub', [g, mPrev], `${mSlot}.diff`), b.scalar(1 - beta1)], `${mSlot}.delta`)], `${mSlot}.sum`, [], nextName(mSlot));
    const v = b.op1('Add', [b.op1('Mul', [vPrev, b.scalar(beta2)], `${vSlot}.decayed`), b.op1('Mul', [b.op1('Mul', [g, g], `${vSlot}.g2`), b.scalar(1 - beta2)], `${vSlot}.in`)], `${vSlot}.sum`, [], nextName(vSlot));
    const denom = b.op1('Add', [b.op1('Sqrt', [v], `${key}.sqrtv`), b.scalar(eps)], `${key}.denom`);
    const scale = b.op1('Add', [b.op1('Div', ['radam.adaptive', denom], `${key}.adaptive`), 'radam.plain'], `${key}.scale`);
    step = b.op1('Mul', [m, scale], `${key}.step`);
  }
  b.op1('Sub', [base, step], `${key}.new`, [], nextName(key));
}

interface Ctx {
  b: GraphBuilder;
  n: number;
  shapes: Map<string, ActShape>;
  /** Layer name → its output tensor. */
  value: Map<string, string>;
  /** Per layer, what its backward needs from the forward. */
  saved: Map<string, Record<string, string>>;
  /** Gradient contributions to each layer's output, summed when the layer is reached. */
  grads: Map<string, string[]>;
  /** Parameter gradients by parameter key. */
  paramGrads: Map<string, string>;
  convWeightGradient: ConvWeightGradient;
  convInputGradient: ConvInputGradient;
  bn: BnFormulation;
  convKernel: ConvKernel;
}

const reduceSum = (c: Ctx, x: string, axes: number[], keep: boolean, hint: string): string => c.b.op1('ReduceSum', [x, c.b.int64s(axes)], hint, [int('keepdims', keep ? 1 : 0)]);
const reduceMean = (c: Ctx, x: string, axes: number[], keep: boolean, hint: string): string => c.b.op1('ReduceMean', [x], hint, [ints('axes', axes), int('keepdims', keep ? 1 : 0)]);
const reshape = (c: Ctx, x: string, dims: number[], hint: string): string => c.b.op1('Reshape', [x, c.b.int64s(dims)], hint);

function addGrad(c: Ctx, layer: string, g: string): void {
  const list = c.grads.get(layer);
  if (list) list.push(g);
  else c.grads.set(layer, [g]);
}

function forwardLayer(c: Ctx, layer: Layer, stats: { mean: string; variance: string; layer: string; momentum: number }[]): void {
  const { b } = c;
  const ins = layerInputs(layer).map((n) => c.value.get(n)!);
  const x = ins[0]!;
  const inShape = (): ActShape => c.shapes.get(layerInputs(layer)[0]!)!;
  const name = layer.name;
  let y: string;
  switch (layer.kind) {
    case 'input':
      return;
    case 'conv': {
      const k = layer.kernel;
      const p = layer.pad;
      const [, , ci] = inShape() as [number, number, number];
      y = emitConv(b, c.convKernel, x, paramKey(name, 'kernel'), layer.bias ? paramKey(name, 'bias') : undefined, { k, stride: layer.stride, pad: p, ci, co: layer.filters }, name);
      c.saved.set(name, { x });
      break;
    }
    case 'bn': {
      const s = inShape();
      const map = isMap(s);
      const C = map ? s[2] : s[0];
      const axes = map ? [0, 2, 3] : [0];
      const cshape = map ? [1, C, 1, 1] : [1, C];
      const mean = reduceMean(c, x, axes, true, `${name}.mean`);
      if (c.bn === 'batchnorm') {
        // x − μ as BatchNormalization(x; scale 1, shift −μ): one pass of its kernel, where
        // onnxruntime's broadcasting Sub took up to twice as long.
        const negMean = b.op1('Neg', [reshape(c, mean, [C], `${name}.meanc`)], `${name}.negmean`);
        const xc = b.op1('BatchNormalization', [x, b.floats(`${name}.ones`, [C], new Float32Array(C).fill(1)), negMean, b.floats(`${name}.zeros`, [C], new Float32Array(C)), b.floats(`${name}.ones`, [C], new Float32Array(C).fill(1))], `${name}.xc`, [float('epsilon', 0)]);
        // Two-pass statistics (Σ(x − μ)², not E[x²] − μ², which loses digits when |μ| ≫ σ),
        // summed per image first: one ReduceSumSquare over the whole batch is a float32
        // running sum that put the gradients 2e-4 off float64 (these are 3e-6 off), and
        // squaring into a tensor first costs a full write.
        const perImage = map
          ? b.op1('ReduceSumSquare', [reshape(c, xc, [c.n, C, s[0] * s[1]], `${name}.xcrows`)], `${name}.ssimg`, [ints('axes', [2]), int('keepdims', 0)])
          : b.op1('Mul', [xc, xc], `${name}.sq`);
        const variance = reshape(c, b.op1('Mul', [reduceSum(c, perImage, [0], false, `${name}.ss`), b.scalar(1 / (map ? c.n * s[0] * s[1] : c.n))], `${name}.varc`), cshape, `${name}.var`);
        const meanC = reshape(c, mean, [C], `${name}.batchmean`);
        const varC = reshape(c, variance, [C], `${name}.batchvar`);
        y = b.op1('BatchNormalization', [x, paramKey(name, 'gamma'), paramKey(name, 'beta'), meanC, varC], name, [float('epsilon', layer.eps)]);
        const invStd = b.op1('Reciprocal', [b.op1('Sqrt', [b.op1('Add', [varC, b.scalar(layer.eps)], `${name}.vareps`)], `${name}.std`)], `${name}.invstd`);
        stats.push({ layer: name, momentum: layer.momentum, mean: meanC, variance: varC });
        c.saved.set(name, { xc, invStd });
        break;
      }
      const xc = b.op1('Sub', [x, mean], `${name}.xc`);
      const variance = reduceMean(c, b.op1('Mul', [xc, xc], `${name}.sq`), axes, true, `${name}.var`);
      const invStd = b.op1('Reciprocal', [b.op1('Sqrt', [b.op1('Add', [variance, b.scalar(layer.eps)], `${name}.vareps`)], `${name}.std`)], `${name}.invstd`);
      const xhat = b.op1('Mul', [xc, invStd], `${name}.xhat`);
      const gamma = reshape(c, paramKey(name, 'gamma'), cshape, `${name}.gamma`);
      const beta = reshape(c, paramKey(name, 'beta'), cshape, `${name}.beta`);
      y = b.op1('Add', [b.op1('Mul', [xhat, gamma], `${name}.scaled`), beta], name);
      stats.push({ layer: name, momentum: layer.momentum, mean: reshape(c, mean, [C], `${name}.batchmean`), variance: reshape(c, variance, [C], `${name}.batchvar`) });
      c.saved.set(name, { xhat, invStd, gamma });
      break;
    }
    case 'relu':
      y = b.op1('Relu', [x], name);
      c.saved.set(name, { y });
      break;
    case 'add':
      y = b.op1('Add', ins, name);
      break;
    case 'maxpool':
    case 'avgpool': {
      const p = layer.pad;
      const attrs = [ints('kernel_shape', [layer.kernel, layer.kernel]), ints('strides', [layer.stride, layer.stride]), ints('pads', [p, p, p, p])];
      if (layer.kind === 'maxpool') {
        const [out, indices] = b.op('MaxPool', [x], name, attrs, 2);
        y = out!;
        c.saved.set(name, { indices: indices! });
      } else {
        y = b.op1('AveragePool', [x], name, [...attrs, int('count_include_pad', 0)]);
      }
      break;
    }
    case 'globalavgpool':
      y = reduceMean(c, x, [2, 3], false, name);
      break;
    case 'flatten': {
      const s = inShape();
      // The graph flattens NHWC (h, w, c); NCHW agrees only with one pixel or one channel.
      const nhwc = isMap(s) && s[0] * s[1] > 1 && s[2] > 1 ? b.op1('Transpose', [x], `${name}.nhwc`, [ints('perm', [0, 2, 3, 1])]) : x;
      y = b.op1('Flatten', [nhwc], name, [int('axis', 1)]);
      break;
    }
    case 'dense':
      y = b.op1('Gemm', [x, paramKey(name, 'kernel'), paramKey(name, 'bias')], name);
      c.saved.set(name, { x });
      break;
    case 'padshortcut': {
      const [h, w, ch] = inShape() as [number, number, number];
      const st = layer.stride;
      const sliced = st === 1 ? x : b.op1('Slice', [x, b.int64s([0, 0]), b.int64s([h, w]), b.int64s([2, 3]), b.int64s([st, st])], `${name}.sub`);
      const extra = layer.filters - ch;
      const before = Math.floor(extra / 2);
      y = extra === 0 ? sliced : b.op1('Pad', [sliced, b.int64s([0, before, 0, 0, 0, extra - before, 0, 0])], name);
      break;
    }
    default:
      throw new Error(`training graph: layer "${(layer as Layer).name}" has unsupported kind "${(layer as { kind: string }).kind}"`);
  }
  c.value.set(name, y);
}

/**
 * A k×k convolution of NCHW `x` ([N, ci, …]) by OIHW `w` ([co, ci, k, k]), NCHW out, on the
 * kernel `kernel` names. For the blocked kernels the weights are zero-padded to whole
 * output blocks and reordered in the graph as MLAS lays out a constant filter: OIHWBiBo
 * (`[co/B, ci/B, k, k, Bi, Bo]`) when the input is blocked too, OIHWBo (`[co/B, ci, k, k,
 * Bo]`) when its channels fit in one block and it stays NCHW. ReorderOutput drops the padded
 * output channels.
 */
export function emitConv(b: GraphBuilder, kernel: ConvKernel, x: string, w: string, bias: string | undefined, o: { k: number; stride: number; pad: number; ci: number; co: number }, out: string): string {
  const { k, stride, pad, ci, co } = o;
  const attrs = [ints('kernel_shape', [k, k]), ints('strides', [stride, stride]), ints('pads', [pad, pad, pad, pad])];
  const block = kernel === 'nchw' ? 0 : Number(kernel.slice('nchwc'.length));
  const reshape = (t: string, dims: number[], hint: string) => b.op1('Reshape', [t, b.int64s(dims)], hint);
  const blockedInput = ci >= block;
  if (block === 0 || (blockedInput && ci % block !== 0)) return b.op1('Conv', [x, w, ...(bias ? [bias] : [])], out, attrs);
  const coPad = Math.ceil(co / block) * block;
  const wPadded = coPad === co ? w : b.op1('Pad', [w, b.int64s([0, 0, 0, 0, coPad - co, 0, 0, 0])], `${out}.wpad`);
  const wBlocks = blockedInput
    ? b.op1('Transpose', [reshape(wPadded, [coPad / block, block, ci / block, block, k, k], `${out}.w6`)], `${out}.wbibo`, [ints('perm', [0, 2, 4, 5, 3, 1])])
    : b.op1('Transpose', [reshape(wPadded, [coPad / block, block, ci, k, k], `${out}.w5`)], `${out}.wbo`, [ints('perm', [0, 2, 3, 4, 1])]);
  const wNchwc = reshape(wBlocks, [coPad, ci, k, k], `${out}.wnchwc`);
  const biasPadded = bias && coPad !== co ? b.op1('Pad', [bias, b.int64s([0, coPad - co])], `${out}.bpad`) : bias;
  const xIn = blockedInput ? b.op('ReorderInput', [x], `${out}.xblocks`, [int('channels_last', 0)], 1, NCHWC_DOMAIN)[0]! : x;
  const yBlocks = b.op('Conv', [xIn, wNchwc, ...(biasPadded ? [biasPadded] : [])], `${out}.yblocks`, attrs, 1, NCHWC_DOMAIN)[0]!;
  return b.op('ReorderOutput', [yBlocks], out, [int('channels', co), int('channels_last', 0)], 1, NCHWC_DOMAIN)[0]!;
}

/** Adds the gradient of `layer`'s inputs (and parameters) given the gradient of its output. */
function backwardLayer(c: Ctx, layer: Layer, dy: string, needsInputGrad: (name: string) => boolean): void {
  const { b, n } = c;
  const name = layer.name;
  const inputs = layerInputs(layer);
  const src = inputs[0];
  const inShape = (): ActShape => c.shapes.get(src!)!;
  const outShape = c.shapes.get(name)!;
  const saved = c.saved.get(name) ?? {};
  const wantX = src !== undefined && needsInputGrad(src);
  switch (layer.kind) {
    case 'input':
      return;
    case 'conv': {
      const [h, w, ci] = inShape() as [number, number, number];
      const [oh, ow] = outShape as [number, number, number];
      const { kernel: k, stride: s, pad: p } = layer;
      if (layer.bias) c.paramGrads.set(paramKey(name, 'bias'), reduceSum(c, dy, [0, 2, 3], false, `${name}.dbias`));
      c.paramGrads.set(paramKey(name, 'kernel'), convWeightGradient(c, layer, saved.x!, dy, [h, w, ci], [oh, ow]));
      if (wantX) {
        if (c.convInputGradient === 'conv' && s === 1 && p <= k - 1) {
          // dX = dY ⋆ W with W flipped in space and its channel axes swapped: a forward conv.
          const flipped = b.op1('Slice', [b.op1('Transpose', [paramKey(name, 'kernel')], `${name}.wt`, [ints('perm', [1, 0, 2, 3])]), b.int64s([-1, -1]), b.int64s([-k - 1, -k - 1]), b.int64s([2, 3]), b.int64s([-1, -1])], `${name}.wflip`);
          const q = k - 1 - p;
          addGrad(c, src!, emitConv(b, c.convKernel, dy, flipped, undefined, { k, stride: 1, pad: q, ci: layer.filters, co: ci }, `${name}.dx`));
        } else {
          const outPad = [h + 2 * p - ((oh - 1) * s + k), w + 2 * p - ((ow - 1) * s + k)];
          const attrs = [ints('kernel_shape', [k, k]), ints('strides', [s, s]), ints('pads', [p, p, p, p])];
          if (outPad[0]! > 0 || outPad[1]! > 0) attrs.push(ints('output_padding', outPad));
          addGrad(c, src!, b.op1('ConvTranspose', [dy, paramKey(name, 'kernel')], `${name}.dx`, attrs));
        }
      }
      return;
    }
    case 'bn': {
      const s = inShape();
      const map = isMap(s);
      const axes = map ? [0, 2, 3] : [0];
      const count = map ? n * s[0] * s[1] : n;
      if (c.bn === 'batchnorm') {
        // With xc = x − μ and r = σ⁻¹ (per channel, [C]): dγ = r·Σ dy·xc, dβ = Σ dy, and
        // dx = a·dy + bx·xc + c0 with a = γr, bx = −a·r·dγ/M, c0 = −a·dβ/M: two affine maps,
        // each one pass of the BatchNormalization kernel (mean 0, variance 1, epsilon 0).
        const { xc, invStd } = saved as { xc: string; invStd: string };
        const C = s[map ? 2 : 0]!;
        const dbeta = reduceSum(c, dy, axes, false, `${name}.dbeta`);
        const dgamma = b.op1('Mul', [reduceSum(c, b.op1('Mul', [dy, xc], `${name}.dyxc`), axes, false, `${name}.sumdyxc`), invStd], `${name}.dgamma`);
        c.paramGrads.set(paramKey(name, 'gamma'), dgamma);
        c.paramGrads.set(paramKey(name, 'beta'), dbeta);
        if (wantX) {
          const a = b.op1('Mul', [paramKey(name, 'gamma'), invStd], `${name}.a`);
          const negAOverM = b.op1('Mul', [a, b.scalar(-1 / count)], `${name}.negaoverm`);
          const bx = b.op1('Mul', [b.op1('Mul', [negAOverM, invStd], `${name}.negarm`), dgamma], `${name}.bx`);
          const c0 = b.op1('Mul', [negAOverM, dbeta], `${name}.c0`);
          const zeros = b.floats(`${name}.zeros`, [C], new Float32Array(C));
          const ones = b.floats(`${name}.ones`, [C], new Float32Array(C).fill(1));
          const affine = (t: string, scale: string, shift: string, hint: string) => b.op1('BatchNormalization', [t, scale, shift, zeros, ones], hint, [float('epsilon', 0)]);
          addGrad(c, src!, b.op1('Add', [affine(dy, a, c0, `${name}.ady`), affine(xc, bx, zeros, `${name}.bxc`)], `${name}.dx`));
        }
        return;
      }
      const { xhat, invStd, gamma } = saved as { xhat: string; invStd: string; gamma: string };
      const sumDy = reduceSum(c, dy, axes, true, `${name}.sumdy`);
      const sumDyXhat = reduceSum(c, b.op1('Mul', [dy, xhat], `${name}.dyxhat`), axes, true, `${name}.sumdyxhat`);
      c.paramGrads.set(paramKey(name, 'gamma'), reshape(c, sumDyXhat, [s[map ? 2 : 0]!], `${name}.dgamma`));
      c.paramGrads.set(paramKey(name, 'beta'), reshape(c, sumDy, [s[map ? 2 : 0]!], `${name}.dbeta`));
      if (wantX) {
        // dx = a·dy + bx·x̂ + c0 with per-channel a = γσ⁻¹, bx = −a·Σ(dy·x̂)/M, c0 = −a·Σdy/M.
        const a = b.op1('Mul', [gamma, invStd], `${name}.a`);
        const negAOverM = b.op1('Mul', [a, b.scalar(-1 / count)], `${name}.negaoverm`);
        const bx = b.op1('Mul', [negAOverM, sumDyXhat], `${name}.bx`);
        const c0 = b.op1('Mul', [negAOverM, sumDy], `${name}.c0`);
        const dx = b.op1('Add', [b.op1('Add', [b.op1('Mul', [dy, a], `${name}.ady`), b.op1('Mul', [xhat, bx], `${name}.bxhat`)], `${name}.dx0`), c0], `${name}.dx`);
        addGrad(c, src!, dx);
      }
      return;
    }
    case 'relu':
      if (wantX) addGrad(c, src!, b.op1('Where', [b.op1('Greater', [saved.y!, b.scalar(0)], `${name}.mask`), dy, b.scalar(0)], `${name}.dx`));
      return;
    case 'add':
      for (const i of inputs) if (needsInputGrad(i)) addGrad(c, i, dy);
      return;
    case 'maxpool': {
      if (!wantX) return;
      const total = batchDims(n, inShape()).reduce((p, q) => p * q, 1);
      const zeros = b.op1('ConstantOfShape', [b.int64s([total])], `${name}.zeros`);
      const flat = b.op1('ScatterElements', [zeros, reshape(c, saved.indices!, [-1], `${name}.idx`), reshape(c, dy, [-1], `${name}.dyflat`)], `${name}.scatter`, [int('axis', 0), str('reduction', 'add')]);
      addGrad(c, src!, reshape(c, flat, batchDims(n, inShape()), `${name}.dx`));
      return;
    }
    case 'avgpool': {
      if (!wantX) return;
      addGrad(c, src!, avgPoolGradient(c, layer, dy, inShape() as [number, number, number]));
      return;
    }
    case 'globalavgpool': {
      if (!wantX) return;
      const [h, w, ch] = inShape() as [number, number, number];
      const scaled = reshape(c, b.op1('Mul', [dy, b.scalar(1 / (h * w))], `${name}.scaled`), [n, ch, 1, 1], `${name}.col`);
      addGrad(c, src!, b.op1('Expand', [scaled, b.int64s([n, ch, h, w])], `${name}.dx`));
      return;
    }
    case 'flatten': {
      if (!wantX) return;
      const s = inShape();
      if (isMap(s) && s[0] * s[1] > 1 && s[2] > 1) {
        const nhwc = reshape(c, dy, [n, s[0], s[1], s[2]], `${name}.dynhwc`);
        addGrad(c, src!, b.op1('Transpose', [nhwc], `${name}.dx`, [ints('perm', [0, 3, 1, 2])]));
      } else {
        addGrad(c, src!, reshape(c, dy, batchDims(n, s), `${name}.dx`));
      }
      return;
    }
    case 'dense':
      c.paramGrads.set(paramKey(name, 'bias'), reduceSum(c, dy, [0], false, `${name}.dbias`));
      c.paramGrads.set(paramKey(name, 'kernel'), b.op1('Gemm', [saved.x!, dy], `${name}.dkernel`, [int('transA', 1)]));
      if (wantX) addGrad(c, src!, b.op1('Gemm', [dy, paramKey(name, 'kernel')], `${name}.dx`, [int('transB', 1)]));
      return;
    case 'padshortcut': {
      if (!wantX) return;
      const [h, w, ch] = inShape() as [number, number, number];
      const [oh, ow] = outShape as [number, number, number];
      const before = Math.floor((layer.filters - ch) / 2);
      const own = layer.filters === ch ? dy : b.op1('Slice', [dy, b.int64s([before]), b.int64s([before + ch]), b.int64s([1])], `${name}.own`);
      const st = layer.stride;
      if (st === 1) {
        addGrad(c, src!, own);
        return;
      }
      // Put each value at (st·i, st·j): [N,C,oh,1,ow,1] padded to [N,C,oh,st,ow,st], then cut to H×W.
      const spread = b.op1('Pad', [reshape(c, own, [n, ch, oh, 1, ow, 1], `${name}.cells`), b.int64s([0, 0, 0, 0, 0, 0, 0, 0, 0, st - 1, 0, st - 1])], `${name}.spread`);
      const full = reshape(c, spread, [n, ch, oh * st, ow * st], `${name}.full`);
      const dx = oh * st === h && ow * st === w ? full : b.op1('Slice', [full, b.int64s([0, 0]), b.int64s([h, w]), b.int64s([2, 3])], `${name}.dx`);
      addGrad(c, src!, dx);
      return;
    }
    default:
      throw new Error(`training graph: no backward for layer kind "${(layer as { kind: string }).kind}"`);
  }
}

function convWeightGradient(c: Ctx, layer: ConvLayer, x: string, dy: string, [h, w, ci]: [number, number, number], [oh, ow]: [number, number]): string {
  const { b, n } = c;
  const { name, kernel: k, stride: s, pad: p, filters: co } = layer;
  if (k === 1 && p === 0) {
    // A 1×1 conv's weight gradient is one matrix product over (N, pixels).
    const xs = s === 1 ? x : b.op1('Slice', [x, b.int64s([0, 0]), b.int64s([h, w]), b.int64s([2, 3]), b.int64s([s, s])], `${name}.xs`);
    const xm = reshape(c, b.op1('Transpose', [xs], `${name}.xt`, [ints('perm', [1, 0, 2, 3])]), [ci, n * oh * ow], `${name}.xm`);
    const dym = reshape(c, b.op1('Transpose', [dy], `${name}.dyt`, [ints('perm', [1, 0, 2, 3])]), [co, n * oh * ow], `${name}.dym`);
    return reshape(c, b.op1('Gemm', [dym, xm], `${name}.dw2`, [int('transB', 1)]), [co, ci, 1, 1], `${name}.dkernel`);
  }
  if (c.convWeightGradient === 'flat' && s === 1) {
    const hp = h + 2 * p;
    const wp = w + 2 * p;
    const span = n * hp * wp - ((k - 1) * wp + (k - 1));
    const xt = b.op1('Transpose', [x], `${name}.xt`, [ints('perm', [1, 0, 2, 3])]);
    const xp = reshape(c, p > 0 ? b.op1('Pad', [xt, b.int64s([0, 0, p, p, 0, 0, p, p])], `${name}.xpad`) : xt, [ci, n * hp * wp], `${name}.xflat`);
    // dY on the same Hp×Wp grid (zeros right and below), pixels as rows: [N·Hp·Wp, Co], cut to the span.
    const dyp = b.op1('Pad', [dy, b.int64s([0, 0, 0, 0, 0, 0, hp - oh, wp - ow])], `${name}.dypad`);
    const dym = b.op1('Slice', [reshape(c, b.op1('Transpose', [dyp], `${name}.dynhwc`, [ints('perm', [0, 2, 3, 1])]), [n * hp * wp, co], `${name}.dyrows`), b.int64s([0]), b.int64s([span]), b.int64s([0])], `${name}.dym`);
    const parts: string[] = [];
    for (let ky = 0; ky < k; ky++) {
      for (let kx = 0; kx < k; kx++) {
        const o = ky * wp + kx;
        const view = b.op1('Slice', [xp, b.int64s([o]), b.int64s([o + span]), b.int64s([1])], `${name}.win${ky}${kx}`);
        parts.push(b.op1('MatMul', [view, dym], `${name}.dw${ky}${kx}`));
      }
    }
    const dw = b.op1('Concat', parts, `${name}.dwcat`, [int('axis', 0)]);
    return b.op1('Transpose', [reshape(c, dw, [k, k, ci, co], `${name}.dw4`)], `${name}.dkernel`, [ints('perm', [3, 2, 0, 1])]);
  }
  if (c.convWeightGradient === 'gemm' || c.convWeightGradient === 'patches' || c.convWeightGradient === 'flat') {
    // The kernel as [k, k, Ci, Co]: for each offset (ky, kx), the shifted (strided) view of
    // padded X with channels first, [Ci, N·oh·ow], times dY as [N·oh·ow, Co]. `gemm` runs one
    // GEMM per offset; `patches` stacks the k² views and runs one GEMM (a copy of k²·|X| more).
    const xt = b.op1('Transpose', [x], `${name}.xt`, [ints('perm', [1, 0, 2, 3])]);
    const xp = p > 0 ? b.op1('Pad', [xt, b.int64s([0, 0, p, p, 0, 0, p, p])], `${name}.xpad`) : xt;
    const dym = reshape(c, b.op1('Transpose', [dy], `${name}.dynhwc`, [ints('perm', [0, 2, 3, 1])]), [n * oh * ow, co], `${name}.dym`);
    const views: string[] = [];
    for (let ky = 0; ky < k; ky++) {
      for (let kx = 0; kx < k; kx++) {
        const view = b.op1('Slice', [xp, b.int64s([ky, kx]), b.int64s([ky + (oh - 1) * s + 1, kx + (ow - 1) * s + 1]), b.int64s([2, 3]), b.int64s([s, s])], `${name}.view${ky}${kx}`);
        views.push(c.convWeightGradient === 'gemm' ? b.op1('MatMul', [reshape(c, view, [ci, n * oh * ow], `${name}.vm${ky}${kx}`), dym], `${name}.dw${ky}${kx}`) : view);
      }
    }
    const dw =
      c.convWeightGradient === 'gemm'
        ? b.op1('Concat', views, `${name}.dwcat`, [int('axis', 0)])
        : b.op1('MatMul', [reshape(c, b.op1('Concat', views, `${name}.patches`, [int('axis', 0)]), [k * k * ci, n * oh * ow], `${name}.pm`), dym], `${name}.dwt`);
    return b.op1('Transpose', [reshape(c, dw, [k, k, ci, co], `${name}.dw4`)], `${name}.dkernel`, [ints('perm', [3, 2, 0, 1])]);
  }
  // X with channels as the batch, convolved by dY with samples as input channels.
  const xt = b.op1('Transpose', [x], `${name}.xt`, [ints('perm', [1, 0, 2, 3])]);
  const dyt = b.op1('Transpose', [dy], `${name}.dyt`, [ints('perm', [1, 0, 2, 3])]);
  const g = b.op1('Conv', [xt, dyt], `${name}.dwconv`, [ints('kernel_shape', [oh, ow]), ints('dilations', [s, s]), ints('pads', [p, p, p, p])]);
  // The strided windows may reach past k at the far edge (height and width separately).
  const extentH = h + 2 * p - ((oh - 1) * s + 1) + 1;
  const extentW = w + 2 * p - ((ow - 1) * s + 1) + 1;
  const cropped = extentH === k && extentW === k ? g : b.op1('Slice', [g, b.int64s([0, 0]), b.int64s([k, k]), b.int64s([2, 3])], `${name}.dwcrop`);
  return b.op1('Transpose', [cropped], `${name}.dkernel`, [ints('perm', [1, 0, 2, 3])]);
}

function avgPoolGradient(c: Ctx, layer: PoolLayer, dy: string, [h, w, ch]: [number, number, number]): string {
  const { b } = c;
  const { name, kernel: k, stride: s, pad: p } = layer;
  const oh = windowOut(h, k, s, p);
  const ow = windowOut(w, k, s, p);
  // Each output averaged over its window's in-image pixels (count_include_pad = 0).
  const invCounts = poolWindowCounts(h, w, k, s, p).map((v) => 1 / v);
  const scaled = b.op1('Mul', [dy, b.floats(`${name}.invcount`, [1, 1, oh, ow], invCounts)], `${name}.scaled`);
  const ones = b.floats(`${name}.ones`, [ch, 1, k, k], new Float32Array(ch * k * k).fill(1));
  const outPad = [h + 2 * p - ((oh - 1) * s + k), w + 2 * p - ((ow - 1) * s + k)];
  const attrs = [ints('kernel_shape', [k, k]), ints('strides', [s, s]), ints('pads', [p, p, p, p]), int('group', ch)];
  if (outPad[0]! > 0 || outPad[1]! > 0) attrs.push(ints('output_padding', outPad));
  return b.op1('ConvTranspose', [scaled, ones], `${name}.dx`, attrs);
}

/** Emits the loss terms and the `loss` output, and adds their gradients to the logits' and the feature's. */
function emitLoss(c: Ctx, graph: Graph, objective: Objective): void {
  const { b, n } = c;
  const logits = c.value.get(graph.output)!;
  const terms: string[] = [];
  const dLogitTerms: string[] = [];
  if (objective.ce > 0) {
    const logp = b.op1('LogSoftmax', [logits], 'ce.logp', [int('axis', 1)]);
    terms.push(b.op1('Mul', [reduceSum(c, b.op1('Mul', ['onehot', logp], 'ce.picked'), [0, 1], false, 'ce.sum'), b.scalar(-objective.ce / n)], 'ce.loss'));
    dLogitTerms.push(b.op1('Mul', [b.op1('Sub', [b.op1('Exp', [logp], 'ce.p'), 'onehot'], 'ce.diff'), b.scalar(objective.ce / n)], 'ce.dlogits'));
  }
  const kd = objective.distill;
  if (kd && kd.weight > 0) {
    const t = kd.temperature;
    const invT = b.scalar(1 / t);
    const logpt = b.op1('LogSoftmax', [b.op1('Mul', ['target.logits', invT], 'kd.tT')], 'kd.logpt', [int('axis', 1)]);
    const pt = b.op1('Exp', [logpt], 'kd.pt');
    const logq = b.op1('LogSoftmax', [b.op1('Mul', [logits, invT], 'kd.sT')], 'kd.logq', [int('axis', 1)]);
    const kl = reduceSum(c, b.op1('Mul', [pt, b.op1('Sub', [logpt, logq], 'kd.logratio')], 'kd.terms'), [0, 1], false, 'kd.sum');
    terms.push(b.op1('Mul', [kl, b.scalar((kd.weight * kd.groups * t * t) / n)], 'kd.loss'));
    // d(T²·KL)/d student = T·(q − p)
    dLogitTerms.push(b.op1('Mul', [b.op1('Sub', [b.op1('Exp', [logq], 'kd.q'), pt], 'kd.diff'), b.scalar((kd.weight * kd.groups * t) / n)], 'kd.dlogits'));
  }
  const ft = objective.feature;
  if (ft && ft.weight > 0) {
    const layer = graph.feature!;
    const s = c.shapes.get(layer)!;
    const d = s.reduce((p, q) => p * q, 1);
    const f = c.value.get(layer)!;
    // Cosine over the NHWC-flattened vectors (the teacher's features come NHWC from the host).
    const fNhwc = isMap(s) ? b.op1('Transpose', [f], 'feat.nhwc', [ints('perm', [0, 2, 3, 1])]) : f;
    const sv = reshape(c, fNhwc, [n, d], 'feat.s');
    const tv = reshape(c, 'target.feature', [n, d], 'feat.t');
    const dot = reduceSum(c, b.op1('Mul', [sv, tv], 'feat.st'), [1], true, 'feat.dot');
    const ns = b.op1('Sqrt', [reduceSum(c, b.op1('Mul', [sv, sv], 'feat.ss'), [1], true, 'feat.ss.sum')], 'feat.ns');
    const nt = b.op1('Sqrt', [reduceSum(c, b.op1('Mul', [tv, tv], 'feat.tt'), [1], true, 'feat.tt.sum')], 'feat.nt');
    const eps = b.scalar(COSINE_EPS);
    const a = b.op1('Max', [ns, eps], 'feat.a');
    const bt = b.op1('Max', [nt, eps], 'feat.b');
    const ab = b.op1('Mul', [a, bt], 'feat.ab');
    const cos = b.op1('Div', [dot, ab], 'feat.cos');
    const scale = (ft.weight * ft.groups) / n;
    terms.push(b.op1('Mul', [reduceSum(c, b.op1('Sub', [b.scalar(1), cos], 'feat.oneminus'), [0, 1], false, 'feat.sum'), b.scalar(scale)], 'feat.loss'));
    // d cos/ds = t/(a·b) − cos·s/a² where the norm is above the clamp (a = |s|), else t/(a·b).
    const mask = b.op1('Cast', [b.op1('Greater', [ns, eps], 'feat.unclamped')], 'feat.mask', [int('to', DT.FLOAT)]);
    const tTerm = b.op1('Div', [tv, ab], 'feat.tterm');
    const sTerm = b.op1('Mul', [sv, b.op1('Div', [b.op1('Mul', [cos, mask], 'feat.cosm'), b.op1('Mul', [a, a], 'feat.aa')], 'feat.scoef')], 'feat.sterm');
    const ds = b.op1('Mul', [b.op1('Sub', [tTerm, sTerm], 'feat.dcos'), b.scalar(-scale)], 'feat.ds');
    const dsShaped = isMap(s)
      ? b.op1('Transpose', [reshape(c, ds, [n, s[0], s[1], s[2]], 'feat.ds.nhwc')], 'feat.dfeature', [ints('perm', [0, 3, 1, 2])])
      : ds;
    addGrad(c, layer, dsShaped);
  }
  if (terms.length === 0) throw new Error('training graph: the objective has no term with a positive weight');
  if (dLogitTerms.length > 0) addGrad(c, graph.output, dLogitTerms.length === 1 ? dLogitTerms[0]! : b.op1('Sum', dLogitTerms, 'dlogits'));
  b.op1(terms.length === 1 ? 'Identity' : 'Sum', terms, 'loss.total', [], STEP_OUTPUT.loss);
}

export function buildTrainingGraph(graph: Graph, opts: TrainingGraphOptions): TrainingGraph {
  const shapes = inferShapes(graph);
  const n = opts.batch;
  if (!Number.isInteger(n) || n < 1) throw new Error(`training graph: batch must be a positive integer, got ${n}`);
  if (opts.mode === 'step' && !opts.optimizer) throw new Error('training graph: step mode needs an optimizer');
  const { objective } = opts;
  checkFormulation(opts);
  if ((objective.feature?.weight ?? 0) > 0 && !graph.feature) throw new Error(`training graph: the objective has a feature term but graph ${graph.arch} names no feature layer`);
  const b = new GraphBuilder();
  const input = inputLayer(graph);
  const [h, w, ch] = input.shape;
  const classes = (shapes.get(graph.output)! as [number])[0];
  b.input('input', [n, h, w, ch]);
  const featureShape = graph.feature ? shapes.get(graph.feature)! : undefined;
  if (opts.mode !== 'statistics') {
    b.input('onehot', [n, classes]);
    if ((objective.distill?.weight ?? 0) > 0) b.input('target.logits', [n, classes]);
    if ((objective.feature?.weight ?? 0) > 0) b.input('target.feature', [n, ...featureShape!]);
  }

  const paramShapes = new Map<string, number[]>();
  const trainable: string[] = [];
  const runningStats: string[] = [];
  for (const layer of graph.layers) {
    for (const p of TRAINABLE_PARAMS[layer.kind]) {
      if (layer.kind === 'conv' && p === 'bias' && !layer.bias) continue;
      const key = paramKey(layer.name, p);
      const shape = ortParamShape(graph, shapes, layer, p);
      paramShapes.set(key, shape);
      trainable.push(key);
      b.input(key, shape);
    }
    if (layer.kind === 'bn') {
      const s = shapes.get(layer.input)!;
      const C = s[s.length - 1]!;
      for (const p of ['mean', 'variance']) {
        const key = paramKey(layer.name, p);
        paramShapes.set(key, [C]);
        runningStats.push(key);
        if (opts.mode === 'step') b.input(key, [C]);
      }
    }
  }
  const ctx: Ctx = { b, n, shapes, value: new Map(), saved: new Map(), grads: new Map(), paramGrads: new Map(), ...DEFAULT_FORMULATION, ...definedOnly(opts) };
  // The host batch is NHWC; one channel needs no data movement.
  ctx.value.set(input.name, ch === 1 ? reshape(ctx, 'input', [n, 1, h, w], 'input.nchw') : b.op1('Transpose', ['input'], 'input.nchw', [ints('perm', [0, 3, 1, 2])]));

  const stats: { mean: string; variance: string; layer: string; momentum: number }[] = [];
  for (const layer of graph.layers) forwardLayer(ctx, layer, stats);
  if (opts.mode === 'statistics') {
    for (const s of stats) {
      for (const [stat, batchValue] of [['mean', s.mean], ['variance', s.variance]] as const) {
        const key = paramKey(s.layer, stat);
        b.op1('Identity', [batchValue], `${key}.bid`, [], batchStatName(key));
        b.output(batchStatName(key), paramShapes.get(key)!);
      }
    }
    return finish([], [], []);
  }
  emitLoss(ctx, graph, objective);
  b.op1('ArgMax', [ctx.value.get(graph.output)!], 'argmax', [int('axis', 1), int('keepdims', 0)], STEP_OUTPUT.predicted);

  // Backward, in reverse graph order; a layer needs its input's gradient only if something
  // trainable lies upstream of it.
  const upstreamTrainable = new Set<string>();
  for (const layer of graph.layers) {
    const own = TRAINABLE_PARAMS[layer.kind].length > 0;
    if (own || layerInputs(layer).some((i) => upstreamTrainable.has(i))) upstreamTrainable.add(layer.name);
  }
  for (let i = graph.layers.length - 1; i >= 0; i--) {
    const layer = graph.layers[i]!;
    const parts = ctx.grads.get(layer.name);
    if (!parts || parts.length === 0) continue;
    const dy = parts.length === 1 ? parts[0]! : b.op1('Sum', parts, `${layer.name}.dy`);
    backwardLayer(ctx, layer, dy, (name) => upstreamTrainable.has(name));
  }
  const updated = trainable.filter((key) => ctx.paramGrads.has(key));

  const slots: string[] = [];
  const scalars: string[] = [];
  b.output(STEP_OUTPUT.loss, []);
  b.output(STEP_OUTPUT.predicted, [n], DT.INT64);
  if (opts.mode === 'step') {
    const opt = opts.optimizer!;
    for (const s of optimizerScalars(opt)) {
      b.input(s, []);
      scalars.push(s);
    }
    for (const key of trainable) {
      const shape = paramShapes.get(key)!;
      if (updated.includes(key)) {
        emitUpdate(b, opt, key, key, ctx.paramGrads.get(key)!, (slot) => {
          slots.push(slot);
          paramShapes.set(slot, shape);
          return b.input(slot, shape);
        });
      } else b.op1('Identity', [key], `${key}.kept`, [], nextName(key));
      b.output(nextName(key), shape);
    }
    for (const slot of slots) b.output(nextName(slot), paramShapes.get(slot)!);
    for (const s of stats) {
      for (const [stat, batchValue] of [['mean', s.mean], ['variance', s.variance]] as const) {
        const key = paramKey(s.layer, stat);
        const decayed = b.op1('Mul', [key, b.scalar(s.momentum)], `${key}.decayed`);
        b.op1('Add', [decayed, b.op1('Mul', [batchValue, b.scalar(1 - s.momentum)], `${key}.in`)], `${key}.sum`, [], nextName(key));
        b.output(nextName(key), paramShapes.get(key)!);
      }
    }
  } else {
    for (const key of updated) {
      b.op1('Identity', [ctx.paramGrads.get(key)!], `${key}.gid`, [], gradName(key));
      b.output(gradName(key), paramShapes.get(key)!);
    }
    for (const s of stats) {
      for (const [stat, batchValue] of [['mean', s.mean], ['variance', s.variance]] as const) {
        const key = paramKey(s.layer, stat);
        b.op1('Identity', [batchValue], `${key}.bid`, [], batchStatName(key));
        b.output(batchStatName(key), paramShapes.get(key)!);
      }
    }
  }
  return finish(updated, slots, scalars);

  function finish(updated: string[], slots: string[], scalars: string[]): TrainingGraph {
    const bytes = encodeModel(
      {
        name: `${graph.arch}.${opts.mode}`,
        nodes: b.nodes,
        initializers: b.initializers,
        inputs: b.inputs,
        outputs: b.outputs,
        producerName: 'facet',
        producerVersion: `training-graph/${opts.mode}`,
        extraOpsets: ctx.convKernel === 'nchw' ? [] : [{ domain: NCHWC_DOMAIN, version: 1 }],
      },
      `training graph ${graph.arch}`,
    );
    return { bytes, trainable, updated, runningStats, slots, scalars, shapes: paramShapes, featureDims: featureShape ? [...featureShape] : undefined, classes };
  }
}

/**
 * The update half of data-parallel training: the mean of `replicas` gradient sets (equal
 * slices of the batch), the optimizer update, and the running statistics from the
 * replicas' batch statistics, combined into those of the whole batch (mean of means;
 * mean of variances plus the variance of the means).
 */
export function buildUpdateGraph(graph: Graph, train: TrainingGraph, opt: OptimizerConfig, replicas: number): Uint8Array {
  const b = new GraphBuilder();
  const grad = (r: number, key: string) => `r${r}:${gradName(key)}`;
  const stat = (r: number, key: string) => `r${r}:${batchStatName(key)}`;
  for (const s of optimizerScalars(opt)) b.input(s, []);
  const slots: [string, number[]][] = [];
  for (const key of train.trainable) {
    const shape = train.shapes.get(key)!;
    b.input(key, shape);
    if (train.updated.includes(key)) {
      const gs = Array.from({ length: replicas }, (_, r) => b.input(grad(r, key), shape));
      const mean = replicas === 1 ? gs[0]! : b.op1('Mul', [b.op1('Sum', gs, `${key}.gsum`), b.scalar(1 / replicas)], `${key}.gmean`);
      emitUpdate(b, opt, key, key, mean, (slot) => (slots.push([slot, shape]), b.input(slot, shape)));
    } else b.op1('Identity', [key], `${key}.kept`, [], nextName(key));
    b.output(nextName(key), shape);
  }
  for (const [slot, shape] of slots) b.output(nextName(slot), shape);
  const momentum = new Map(graph.layers.flatMap((l) => (l.kind === 'bn' ? [[l.name, l.momentum] as const] : [])));
  for (const key of train.runningStats) {
    if (!key.endsWith('/mean')) continue;
    const layer = key.slice(0, -'/mean'.length);
    const varKey = paramKey(layer, 'variance');
    const shape = train.shapes.get(key)!;
    const means = Array.from({ length: replicas }, (_, r) => b.input(stat(r, key), shape));
    const vars = Array.from({ length: replicas }, (_, r) => b.input(stat(r, varKey), shape));
    const inv = b.scalar(1 / replicas);
    const mean = replicas === 1 ? means[0]! : b.op1('Mul', [b.op1('Sum', means, `${key}.msum`), inv], `${key}.all`);
    let variance = replicas === 1 ? vars[0]! : b.op1('Mul', [b.op1('Sum', vars, `${varKey}.vsum`), inv], `${varKey}.within`);
    if (replicas > 1) {
      const spread = means.map((m, r) => {
        const d = b.op1('Sub', [m, mean], `${key}.d${r}`);
        return b.op1('Mul', [d, d], `${key}.d2${r}`);
      });
      variance = b.op1('Add', [variance, b.op1('Mul', [b.op1('Sum', spread, `${varKey}.between`), inv], `${varKey}.betweenmean`)], `${varKey}.all`);
    }
    const m = momentum.get(layer)!;
    for (const [k, batchValue] of [[key, mean], [varKey, variance]] as const) {
      b.input(k, shape);
      b.op1('Add', [b.op1('Mul', [k, b.scalar(m)], `${k}.decayed`), b.op1('Mul', [batchValue, b.scalar(1 - m)], `${k}.in`)], `${k}.sum`, [], nextName(k));
      b.output(nextName(k), shape);
    }
  }
  return encodeModel(
    { name: `${graph.arch}.update`, nodes: b.nodes, initializers: b.initializers, inputs: b.inputs, outputs: b.outputs, producerName: 'facet', producerVersion: 'update-graph' },
    `update graph ${graph.arch}`,
  );
}
