/**
 * What a training step minimises, as data rather than code, so that every engine can
 * build it its own way: tfjs under its gradient tape, onnxruntime as nodes of the
 * generated training graph (compiler/engine/ort/training-graph.ts).
 *
 * loss = ce·CE(logits, labels)
 *      + feature.weight · G · mean_i (1 − cos(student feature_i, teacher feature_i))
 *      + distill.weight · G · T² · mean_i KL(softmax(teacher_i / T) ‖ softmax(student_i / T))
 *
 * G (`groups`) is the number of equal sub-batches a batch is made of, each with its own
 * teacher (FusionDistill's stage 4: one per degradation). Each published term is a mean
 * over its own sub-batch, summed over sub-batches; that equals G times the mean over the
 * whole batch, which is how every engine computes it.
 */
import type { Graph, ParamStore } from '../graph/ir.ts';

export interface Objective {
  /** Weight of the cross-entropy against the labels. */
  ce: number;
  /** (1 − cos) between the student's `graph.feature` and the teacher's, fed per step. */
  feature?: { weight: number; groups: number };
  /** Logit distillation at a temperature, against the teacher's logits, fed per step. */
  distill?: { weight: number; temperature: number; groups: number };
}

/**
 * Frozen teachers (evaluation mode) whose outputs the objective compares against. With
 * one model it answers for the whole batch; with K models, model k answers for sub-batch
 * k of K equal sub-batches.
 */
export interface TeacherSpec {
  models: { graph: Graph; params: ParamStore }[];
  /** The clean image under the same flip and crop, or the student's (degraded) one. */
  input: 'clean' | 'degraded';
}

/** Cosine's norms are clamped below at this, as PyTorch's F.cosine_similarity does. */
export const COSINE_EPS = 1e-8;

export function validateObjective(o: Objective, teachers: TeacherSpec | undefined, where: string): void {
  const needsTeacher = (o.feature?.weight ?? 0) > 0 || (o.distill?.weight ?? 0) > 0;
  if (!(o.ce >= 0) || !Number.isFinite(o.ce)) throw new Error(`${where}: objective.ce must be a finite number ≥ 0, got ${o.ce}`);
  if (needsTeacher && (!teachers || teachers.models.length === 0)) throw new Error(`${where}: the objective distils from teachers, but none are given`);
  for (const [name, term] of [['feature', o.feature], ['distill', o.distill]] as const) {
    if (!term) continue;
    if (!Number.isInteger(term.groups) || term.groups < 1) throw new Error(`${where}: objective.${name}.groups must be a positive integer, got ${term.groups}`);
    if (teachers && teachers.models.length !== 1 && teachers.models.length !== term.groups) {
      throw new Error(`${where}: objective.${name} has ${term.groups} groups but ${teachers.models.length} teachers are given (1 or one per group)`);
    }
  }
  if (o.distill && !(o.distill.temperature > 0)) throw new Error(`${where}: objective.distill.temperature must be > 0, got ${o.distill.temperature}`);
}
