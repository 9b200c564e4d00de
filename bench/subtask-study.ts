/**
 * What the subtask studies (catro-study, catro-selection) share: one subtask of a compile config
 * and the published full model, loaded as the compile loads them, and the compile's own
 * SubtaskInput for any seed, budget and tuning overrides (compiler/pipeline/subtasks.ts).
 */
import { join } from 'node:path';
import { loadCompileConfig, resolveSubtaskClasses, type SubtaskBudget } from '../compiler/pipeline/config.ts';
import { loadCompileData } from '../compiler/pipeline/stages.ts';
import { trainingSplits } from '../compiler/pipeline/training-data.ts';
import type { Engine } from '../compiler/engine/types.ts';
import type { SubtaskInput, SubtaskTuning } from '../compiler/pipeline/subtask.ts';
import { FULL_CKPT, FULL_GRAPH, loadFullModel, subtaskInput, subtaskTuning } from '../compiler/pipeline/subtasks.ts';

export async function loadSubtaskStudy(configFile: string, fromDir: string, subtaskName: string, engine: Engine) {
  const config = await loadCompileConfig(configFile);
  const subtask = config.subtasks.find((s) => s.name === subtaskName);
  if (!subtask) throw new Error(`${configFile} has no subtask "${subtaskName}" (${config.subtasks.map((s) => s.name).join(', ')})`);
  const data = await loadCompileData(config);
  const classes = resolveSubtaskClasses(subtask, config.subtasks.indexOf(subtask), data.train.classNames, configFile);
  const full = await loadFullModel(join(fromDir, FULL_GRAPH), join(fromDir, FULL_CKPT));
  const splits = trainingSplits(config, data.train);
  const tuning = subtaskTuning(config);
  return {
    config,
    subtask,
    data,
    classes,
    labels: classes.map((c) => data.train.classNames[c]!),
    full,
    splits,
    tuning,
    /** The compile's input for this subtask at `seed`, with a study's budget and tuning overrides. */
    input: (seed: number, opts: { budget?: SubtaskBudget; overrides?: Partial<SubtaskTuning> } = {}): SubtaskInput =>
      subtaskInput({ config, allTrain: data.train, splits, full, subtask, classes, tuning: { ...tuning, ...opts.overrides }, seed, budget: opts.budget, engine }),
  };
}
