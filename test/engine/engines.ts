/**
 * The engines tests run on: ort on one CPU thread (one replica, so results are bit-exact
 * run to run) and tfjs on its cpu backend.
 */
import { createOrtEngine } from '../../compiler/engine/ort/engine.ts';
import { createTfjsEngine } from '../../compiler/engine/tfjs/engine.ts';
import type { Engine, EngineName } from '../../compiler/engine/types.ts';

export const TEST_ENGINES: readonly EngineName[] = ['ort', 'tfjs'];

export function testEngine(name: EngineName = 'ort', opts: { replicas?: number; threads?: number } = {}): Promise<Engine> {
  return name === 'ort' ? createOrtEngine({ threads: opts.threads ?? 1, replicas: opts.replicas ?? 1 }) : createTfjsEngine({ backend: 'cpu' });
}
