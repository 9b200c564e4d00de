import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../compiler/tf/backend.ts';
import { cosineFeatureLoss, crossEntropy, logitDistillLoss, objectiveLoss, stopGradient } from '../../compiler/engine/tfjs/losses.ts';

beforeAll(async () => {
  await initBackend('cpu');
});

const LN2 = Math.log(2);
// Two samples, three classes.
//   row 0: logits [0, 0, ln2] → softmax [1/4, 1/4, 1/2]; label 2 → −ln(1/2) = 0.6931472
//   row 1: logits [1, 1, 1+ln2] (same softmax, shifted); label 0 → −ln(1/4) = 1.3862944
//   CE = (0.6931472 + 1.3862944) / 2 = 1.0397208
const logits = () => tf.tensor2d([[0, 0, LN2], [1, 1, 1 + LN2]]);
const labels = () => tf.tensor1d([2, 0], 'int32');
const CE = 1.0397208;
// Features [2, 1, 1, 2] (flattened to 2-vectors): s0 = [1, 0], t0 = [1, 1]: cos = 1/√2 → 1 − cos = 0.29289322;
// s1 = [3, 4], t1 = [4, 3]: cos = 24/25 → 1 − cos = 0.04. Mean = 0.16644661.
const student = () => tf.tensor4d([1, 0, 3, 4], [2, 1, 1, 2]);
const teacher = () => tf.tensor4d([1, 1, 4, 3], [2, 1, 1, 2]);
const COS0 = 1 - Math.SQRT1_2;
const COS1 = 0.04;

const close = (actual: ArrayLike<number>, expected: number[], digits = 5) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, digits));
};

describe('losses', () => {
  it('cross-entropy from logits matches the hand computation', () => {
    expect(crossEntropy(logits(), labels()).dataSync()[0]).toBeCloseTo(CE, 5);
    expect(() => crossEntropy(logits(), tf.tensor1d([0], 'int32'))).toThrow(/2 logit rows but 1 labels/);
  });

  it('cross-entropy gradient is (softmax − onehot) / N', () => {
    const g = tf.grad((x: tf.Tensor) => crossEntropy(x as tf.Tensor2D, labels()))(logits());
    // row 0: ([1/4, 1/4, 1/2] − [0, 0, 1]) / 2; row 1: ([1/4, 1/4, 1/2] − [1, 0, 0]) / 2
    close(g.dataSync(), [0.125, 0.125, -0.25, -0.375, 0.125, 0.25]);
  });

  it('cosine feature loss flattens each sample and averages over the batch', () => {
    expect(cosineFeatureLoss(student(), teacher()).dataSync()[0]).toBeCloseTo((COS0 + COS1) / 2, 6);
    // Scale invariant per sample; a zero vector is clamped, not NaN.
    expect(cosineFeatureLoss(tf.mul(student(), tf.tensor4d([7, 7, 0.5, 0.5], [2, 1, 1, 2])), teacher()).dataSync()[0]).toBeCloseTo((COS0 + COS1) / 2, 5);
    expect(cosineFeatureLoss(tf.zeros([1, 2]), tf.ones([1, 2])).dataSync()[0]).toBe(1);
    expect(() => cosineFeatureLoss(student(), tf.zeros([2, 2]))).toThrow(/\[2, 1, 1, 2\] and teacher feature \[2, 2\] differ/);
  });

  it('cosine gradient flows to the student only', () => {
    // d(1 − cos)/ds = −(t/(|s||t|) − (s·t)·s/(|s|³|t|)), then / N = 2:
    //   sample 0: −([1,1]/√2 − [1,0]/√2) = [0, −1/√2]            → [0, −0.3535534]
    //   sample 1: −([4,3]/25 − 24·[3,4]/625) = [−0.0448, 0.0336] → [−0.0224, 0.0168]
    const [gs, gt] = tf.grads((s: tf.Tensor, t: tf.Tensor) => cosineFeatureLoss(s, t))([student(), teacher()]);
    close(gs!.dataSync(), [0, -0.3535534, -0.0224, 0.0168]);
    close(gt!.dataSync(), [0, 0, 0, 0]);
    expect(gs!.shape).toEqual([2, 1, 1, 2]);
  });

  it('stopGradient is the identity forward', () => {
    const x = tf.tensor1d([1, -2, 3]);
    close(stopGradient(x).dataSync(), [1, -2, 3]);
    close(tf.grad((v: tf.Tensor) => tf.sum(tf.mul(stopGradient(v), v)))(x).dataSync(), [1, -2, 3]); // d(c·v)/dv = c
  });

  /** Stage 4 as objective.ts writes it: the K teachers' features stacked in sub-batch order, the feature term K times a batch mean. */
  const fusionDistill = (ce: number, z: tf.Tensor2D, y: tf.Tensor1D, feature: tf.Tensor, teachers: tf.Tensor[]) =>
    objectiveLoss({ ce, feature: { weight: 1, groups: teachers.length } }, { logits: z, feature }, y, { feature: tf.concat(teachers) });

  it('stage-2 loss is ce·CE + feature·(1 − cos)', () => {
    const stage2 = (feature: number) => objectiveLoss({ ce: 1, feature: feature > 0 ? { weight: feature, groups: 1 } : undefined }, { logits: logits(), feature: student() }, labels(), { feature: teacher() });
    expect(stage2(1).dataSync()[0]).toBeCloseTo(CE + (COS0 + COS1) / 2, 5);
    expect(stage2(0).dataSync()[0]).toBeCloseTo(CE, 5);
  });

  it('stage-4 loss is 0.1·CE(all) + Σ_k (1 − cos)(sub-batch k, teacher k)', () => {
    // K = 2 sub-batches of one sample each: teacher 0 sees sample 0, teacher 1 sample 1.
    // 0.1 · 1.0397208 + 0.29289322 + 0.04 = 0.4368653 (a sum over k, not a mean).
    const t0 = tf.tensor4d([1, 1], [1, 1, 1, 2]);
    const t1 = tf.tensor4d([4, 3], [1, 1, 1, 2]);
    expect(fusionDistill(0.1, logits(), labels(), student(), [t0, t1]).dataSync()[0]).toBeCloseTo(0.1 * CE + COS0 + COS1, 5);
    // Swapping the teachers pairs each sub-batch with the other teacher: s0·t1 = 4 → cos = 4/5; s1·t0 = 7 → cos = 7/(5√2).
    expect(fusionDistill(0.1, logits(), labels(), student(), [t1, t0]).dataSync()[0]).toBeCloseTo(0.1 * CE + (1 - 0.8) + (1 - 7 / (5 * Math.SQRT2)), 5);
    expect(() => fusionDistill(0.1, logits(), labels(), student(), [t0, t1, t0])).toThrow(/student feature \[2, 1, 1, 2\] and teacher feature \[3, 1, 1, 2\] differ/);
  });

  it('stage-4 gradients agree with finite differences', () => {
    const k = 4;
    const sub = 3;
    const z = tf.randomNormal([k * sub, 5], 0, 1, 'float32', 1) as tf.Tensor2D;
    const feat = tf.randomNormal([k * sub, 2, 2, 3], 0, 1, 'float32', 2);
    const teachers = Array.from({ length: k }, (_, i) => tf.randomNormal([sub, 2, 2, 3], 0, 1, 'float32', 10 + i));
    const y = tf.tensor1d([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1], 'int32');
    const f = (zz: tf.Tensor, ff: tf.Tensor) => fusionDistill(0.1, zz as tf.Tensor2D, y, ff, teachers);
    const [gz, gf] = tf.grads(f)([z, feat]);
    const h = 1e-2;
    const probe = (t: tf.Tensor, index: number, other: (p: tf.Tensor) => number) => {
      const d = t.dataSync().slice();
      d[index] += h;
      const up = other(tf.tensor(d, t.shape));
      d[index] -= 2 * h;
      const down = other(tf.tensor(d, t.shape));
      return (up - down) / (2 * h);
    };
    for (const i of [0, 7, 31, 59]) {
      const numeric = probe(z, i, (p) => f(p, feat).dataSync()[0]!);
      expect(gz!.dataSync()[i]).toBeCloseTo(numeric, 3);
    }
    for (const i of [0, 13, 77, 143]) {
      const numeric = probe(feat, i, (p) => f(z, p).dataSync()[0]!);
      expect(gf!.dataSync()[i]).toBeCloseTo(numeric, 3);
    }
  });

  it('logit distillation is T²·KL(teacher ‖ student), gradient to the student only', () => {
    // Teacher [0, ln3] → p = [1/4, 3/4]; student [0, 0] → q = [1/2, 1/2].
    // T = 1: KL = 1/4·ln(1/2) + 3/4·ln(3/2) = −0.1732868 + 0.3040988 = 0.1308120.
    // T = 2: p = softmax([0, ln3/2]) = [1/(1+√3), √3/(1+√3)]; 4·KL = 0.1453631.
    const teacher = tf.tensor2d([[0, Math.log(3)]]);
    const student = tf.tensor2d([[0, 0]]);
    expect(logitDistillLoss(student, teacher, 1).dataSync()[0]).toBeCloseTo(0.130812, 5);
    expect(logitDistillLoss(student, teacher, 2).dataSync()[0]).toBeCloseTo(0.1453631, 5);
    expect(logitDistillLoss(teacher, teacher, 3).dataSync()[0]).toBeCloseTo(0, 6);
    // d/ds at T = 1 is (q − p) / N = [0.25, −0.25]; none to the teacher.
    const [gs, gt] = tf.grads((a: tf.Tensor, b: tf.Tensor) => logitDistillLoss(a as tf.Tensor2D, b as tf.Tensor2D, 1))([student, teacher]);
    close(gs!.dataSync(), [0.25, -0.25]);
    close(gt!.dataSync(), [0, 0]);
    expect(() => logitDistillLoss(student, tf.zeros([1, 3]) as tf.Tensor2D, 1)).toThrow(/differ/);
  });
});
