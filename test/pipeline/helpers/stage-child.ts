/**
 * Child process for the kill -9 test: starts a stage that checkpoints, writes part of an
 * artifact, says "ready" and then hangs until it is killed.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runStage } from '../../../compiler/pipeline/cache.ts';

const [cacheDir] = process.argv.slice(2);
await runStage(cacheDir!, { name: 'train', config: { epochs: 3 }, inputs: {}, code: 'v1' }, async ({ outDir, workDir }) => {
  await writeFile(join(workDir, 'checkpoint.json'), JSON.stringify({ epoch: 2 }));
  await writeFile(join(outDir, 'weights.bin'), 'half-written');
  process.stdout.write('ready\n');
  setInterval(() => {}, 1000); // keep the process alive until the kill
  await new Promise(() => {});
});
