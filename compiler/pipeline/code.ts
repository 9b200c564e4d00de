/**
 * Which source decides each kind of stage's output: a stage's cache key holds the hash of
 * these files, so a change to any of them reruns that kind of stage and nothing else.
 * Training stages hash the code of the engine that runs them, and their key names the
 * engine (Engine.identity): the same config on another engine is another result. Hashes are
 * taken once per process, as a compile starts, so source edited while it runs does not
 * label its stages.
 */
import { dirname, join } from 'node:path';
import type { Engine } from '../engine/types.ts';
import { hashCode } from './cache.ts';
import type { StageKind } from './plan.ts';

const ROOT = join(dirname(new URL(import.meta.url).pathname), '../..');

const DEGRADE_CODE = ['shared/rng.ts', 'shared/degrade.ts', 'shared/degrade', 'shared/preprocess.ts'];
const COMMON_TRAIN_CODE = ['compiler/pipeline/stages.ts', 'compiler/pipeline/training-data.ts', 'compiler/train', 'compiler/engine', 'compiler/graph', 'compiler/data/split.ts', ...DEGRADE_CODE];
const ENGINE_CODE: Record<Engine['name'], string[]> = {
  ort: ['compiler/engine/ort', 'compiler/onnx'],
  tfjs: ['compiler/engine/tfjs', 'compiler/nn', 'compiler/tf'],
};
const EVAL_CODE = ['compiler/pipeline/stages.ts', 'compiler/pipeline/evaluate.ts', 'compiler/onnx', 'compiler/graph', 'compiler/train/checkpoint.ts', ...DEGRADE_CODE];
const SUBTASK_CODE = ['compiler/pipeline/subtask.ts', 'compiler/pipeline/subtasks.ts', 'compiler/pipeline/evaluate.ts', 'compiler/pipeline/training-data.ts', 'compiler/catro', 'compiler/train', 'compiler/engine', 'compiler/graph', 'compiler/onnx', 'compiler/data/split.ts', ...DEGRADE_CODE];

/** The source files (and folders) behind one kind of stage run on `engine`. */
function codePaths(kind: StageKind | 'subtask', engine: Engine): string[] {
  if (kind === 'eval') return EVAL_CODE;
  if (kind === 'subtask') return [...SUBTASK_CODE, ...ENGINE_CODE[engine.name]];
  const train = [...COMMON_TRAIN_CODE, ...ENGINE_CODE[engine.name]];
  return kind === 'fusion' ? [...train, 'compiler/pipeline/fusion.ts'] : train;
}

const versions = new Map<string, Promise<string>>();
/** The code version in a stage's key: the hash of its source, with the engine's identity for stages that train. */
export function codeVersion(kind: StageKind | 'subtask', engine: Engine): Promise<string> {
  const id = `${kind}@${engine.identity}`;
  let version = versions.get(id);
  if (!version) {
    const suffix = kind === 'eval' ? '' : `@${engine.identity}`;
    version = hashCode(codePaths(kind, engine), ROOT).then((hash) => `${hash}${suffix}`);
    versions.set(id, version);
  }
  return version;
}
