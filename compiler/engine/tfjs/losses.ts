/**
 * FusionDistill's losses on @tensorflow/tfjs-core. All return a scalar averaged over the
 * batch; teachers' features pass through {@link stopGradient}, so a teacher stays frozen
 * even when its tensors were computed inside the gradient tape.
 */
import * as tf from '@tensorflow/tfjs-core';
import { COSINE_EPS, type Objective } from '../../train/objective.ts';


/** Identity forward, zero gradient backward (tfjs-core has no stop_gradient op). */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: (args[0] as tf.Tensor).clone(),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }));
  return op(x) as T;
}

/** Mean over the batch of −log softmax(logits)[label] (no label smoothing). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  if (logits.shape[0] !== labels.shape[0]) throw new Error(`crossEntropy: ${logits.shape[0]} logit rows but ${labels.shape[0]} labels`);
  return tf.tidy(() => {
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}

/**
 * Mean over the batch of 1 − cos(flatten(student_i), flatten(teacher_i)); each norm is
 * clamped below at 1e-8 as PyTorch's F.cosine_similarity does. The teacher gets no gradient.
 */
export function cosineFeatureLoss(student: tf.Tensor, teacher: tf.Tensor): tf.Scalar {
  if (student.shape.join() !== teacher.shape.join()) {
    throw new Error(`cosineFeatureLoss: student feature [${student.shape.join(', ')}] and teacher feature [${teacher.shape.join(', ')}] differ`);
  }
  return tf.tidy(() => {
    const n = student.shape[0]!;
    const s = tf.reshape(student, [n, -1]);
    const t = tf.reshape(stopGradient(teacher), [n, -1]);
    const dot = tf.sum(tf.mul(s, t), 1);
    const norms = tf.mul(tf.maximum(tf.norm(s, 'euclidean', 1), COSINE_EPS), tf.maximum(tf.norm(t, 'euclidean', 1), COSINE_EPS));
    return tf.mean(tf.sub(1, tf.div(dot, norms)));
  });
}

/**
 * Logit distillation (Hinton et al.): mean over the batch of
 * T²·KL(softmax(teacher/T) ‖ softmax(student/T)). The teacher gets no gradient.
 */
export function logitDistillLoss(student: tf.Tensor2D, teacher: tf.Tensor2D, temperature: number): tf.Scalar {
  if (student.shape.join() !== teacher.shape.join()) throw new Error(`logitDistillLoss: student logits [${student.shape.join(', ')}] and teacher logits [${teacher.shape.join(', ')}] differ`);
  return tf.tidy(() => {
    const logP = tf.logSoftmax(tf.div(stopGradient(teacher), temperature));
    const logQ = tf.logSoftmax(tf.div(student, temperature));
    const kl = tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ)), 1);
    return tf.mul(tf.mean(kl), temperature * temperature) as tf.Scalar;
  });
}

/**
 * An {@link Objective} on tfjs: the same sum the ort engine's training graph emits. The
 * teacher targets are full-batch tensors (teacher k's rows at sub-batch k), so each term
 * is G times its mean over the batch (objective.ts).
 */
export function objectiveLoss(objective: Objective, out: { logits: tf.Tensor2D; feature?: tf.Tensor }, labels: tf.Tensor1D, targets: { logits?: tf.Tensor2D; feature?: tf.Tensor }): tf.Scalar {
  return tf.tidy(() => {
    const terms: tf.Scalar[] = [];
    if (objective.ce > 0) terms.push(tf.mul(crossEntropy(out.logits, labels), objective.ce));
    const ft = objective.feature;
    if (ft && ft.weight > 0) terms.push(tf.mul(cosineFeatureLoss(out.feature!, targets.feature!), ft.weight * ft.groups));
    const kd = objective.distill;
    if (kd && kd.weight > 0) terms.push(tf.mul(logitDistillLoss(out.logits, targets.logits!, kd.temperature), kd.weight * kd.groups));
    if (terms.length === 0) throw new Error('objectiveLoss: the objective has no term with a positive weight');
    return terms.reduce((a, b) => tf.add(a, b));
  });
}
