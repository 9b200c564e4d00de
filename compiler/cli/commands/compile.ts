/** `facet compile`: the FusionDistill pipeline, one cached stage at a time. */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';

const HELP = `Usage: facet compile --config FILE [options]

Runs the FusionDistill pipeline of FILE (see configs/ and docs/fusiondistill.md):
  base → one fine-tune per degradation (jpeg, blur, awgn, saltpepper) → fusion → FusionDistill,
then exports every model to ONNX, evaluates it in onnxruntime-node on the test set at each
level of each degradation, and writes to the output directory:
  full.onnx, manifest.json   the shipped FusionDistill model
  report.json, report.html   the results table, accuracy-against-level charts, stage times
Every stage is cached by a hash of its config, its inputs and its code: a rerun with nothing
changed trains nothing, and a stage that was killed resumes from its last checkpoint.

Options
  --config FILE         compile config (JSON), e.g. configs/fashion-mnist.json (required)
  --baselines           also train the Vanilla and Fusing baselines (same budget as stage 4)
  --quick               evaluate a sampled subset of levels on part of the test set
  --out DIR             output directory (default models/<dataset>)
  --cache-dir DIR       stage cache (default .cache/compile)
  --backend B           auto, wasm, webgpu, tensorflow, cpu (default auto)
  --prefetch P          worker (default: batches are prepared on a second thread) or inline
  --checkpoint-every N  also checkpoint training every N steps (default: every epoch)
  --seed N              override the config's seed (e.g. to average a study over seeds)`;

export const command: Command = {
  name: 'compile',
  summary: 'Run the FusionDistill pipeline (cached, resumable) and write models + report',
  help: HELP,
  async run(argv) {
    let values;
    try {
      ({ values } = parseArgs({
        args: argv,
        strict: true,
        options: {
          config: { type: 'string' },
          baselines: { type: 'boolean', default: false },
          quick: { type: 'boolean', default: false },
          out: { type: 'string' },
          'cache-dir': { type: 'string' },
          backend: { type: 'string', default: 'auto' },
          prefetch: { type: 'string', default: 'worker' },
          'checkpoint-every': { type: 'string' },
          seed: { type: 'string' },
        },
      }));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (!values.config) throw new UsageError('--config FILE is required (e.g. configs/fashion-mnist.json)');
    const prefetch = values.prefetch;
    if (prefetch !== 'worker' && prefetch !== 'inline') throw new UsageError(`--prefetch must be worker or inline, got "${prefetch}"`);
    const { BACKEND_NAMES, initBackend } = await import('../../tf/backend.ts');
    const backend = values.backend as (typeof BACKEND_NAMES)[number];
    if (!BACKEND_NAMES.includes(backend)) throw new UsageError(`--backend must be one of ${BACKEND_NAMES.join(', ')}, got "${values.backend}"`);
    let checkpointEverySteps: number | undefined;
    if (values['checkpoint-every'] !== undefined) {
      checkpointEverySteps = Number(values['checkpoint-every']);
      if (!Number.isInteger(checkpointEverySteps) || checkpointEverySteps <= 0) throw new UsageError(`--checkpoint-every must be a positive integer, got "${values['checkpoint-every']}"`);
    }

    const { loadCompileConfig, resolveSubtaskClasses } = await import('../../pipeline/config.ts');
    let config;
    try {
      config = await loadCompileConfig(values.config);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (values.seed !== undefined) {
      const seed = Number(values.seed);
      if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be a non-negative integer, got "${values.seed}"`);
      config = { ...config, seed };
    }
    const [{ compile }, { stageImpls, loadCompileData }, { reportTableMarkdown, formatDuration }, { createProgress }] = await Promise.all([
      import('../../pipeline/compile.ts'),
      import('../../pipeline/stages.ts'),
      import('../../pipeline/report.ts'),
      import('../../train/progress.ts'),
    ]);
    const engine = await initBackend(backend);
    const log = (line: string) => console.error(line);
    log(`facet compile: ${values.config} (${config.name}), backend ${engine}${values.baselines ? ', with baselines' : ''}${values.quick ? ', quick evaluation' : ''}`);
    const data = await loadCompileData(config);
    log(`data: ${data.train.count} training and ${data.test.count} test images of ${config.dataset.name}`);
    try {
      config.subtasks.forEach((s, i) => resolveSubtaskClasses(s, i, data.train.classNames, values.config));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const outDir = values.out ?? join('models', config.dataset.name);
    const result = await compile({
      config,
      cacheDir: values['cache-dir'] ?? join('.cache', 'compile'),
      outDir,
      baselines: values.baselines,
      quick: values.quick,
      data,
      impls: stageImpls({ prefetch, checkpointEverySteps, progress: () => createProgress(process.stderr) }),
      log,
    });
    console.log(reportTableMarkdown(result.report));
    console.log(`\n${result.ran.length} of ${result.plan.stages.length} stages ran; wall time ${formatDuration(result.report.wallMs)}. Wrote ${result.files.join(', ')}`);
  },
};
