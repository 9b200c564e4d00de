/**
 * Child process for the kill -9 test: runs the tiny compile on a prepared cache, printing
 * "step N" after every stage-4 step (checkpointing each one), until the parent kills it.
 */
import { join } from 'node:path';
import { compile } from '../../../compiler/pipeline/compile.ts';
import { stageImpls } from '../../../compiler/pipeline/stages.ts';
import { testEngine } from '../../engine/engines.ts';
import { tinyConfig, tinyData } from './tiny.ts';

const [root] = process.argv.slice(2);
const impls = stageImpls({
  engine: await testEngine('ort'),
  prefetch: 'inline',
  checkpointEverySteps: 1,
  onStep: (stage, info) => {
    if (stage !== 'distill') return;
    process.stdout.write(`step ${info.globalStep}\n`);
    // Slow down after the first steps so the kill lands mid-stage.
    if (info.globalStep >= 3) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2000);
  },
});
await compile({ config: tinyConfig(), cacheDir: join(root!, 'cache'), outDir: join(root!, 'out'), baselines: false, quick: true, data: tinyData(), impls });
process.stdout.write('finished\n');
