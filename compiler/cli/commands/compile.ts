/** `facet compile`: the FusionDistill pipeline, one cached stage at a time. */
import { join } from 'node:path';
import { type Command, UsageError, parseFlags } from '../command.ts';
import { ENGINE_FLAGS, ENGINE_HELP, engineOptions } from '../engine-flags.ts';

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
  --baselines           also train the Vanilla and Fusing baselines (same budget as stage 4),
                        and for each subtask evaluate the unpruned model restricted to its
                        classes and L1-norm and random channels at CATRO's widths (before
                        and after the same fine-tuning)
  --quick               evaluate a sampled subset of levels on part of the test set
  --out DIR             output directory (default models/<dataset>)
  --cache-dir DIR       stage cache (default .cache/compile)
  --prefetch P          worker (default: batches are prepared on a second thread) or inline
  --checkpoint-every N  also checkpoint training every N steps (default 50; a kill loses at most that)
  --seed N              override the config's seed (e.g. to average a study over seeds)

Subtasks (CATRO-pruned models for class subsets; see docs/catro.md)
  Every subtask in the config's "subtasks" list is pruned from the FusionDistill model,
  fine-tuned, evaluated and added to the manifest as <name>.<sha256 prefix>.onnx (one
  cached stage each).
  --subtask NAME=A,B,C  compile only this subtask (labels or indices), adding it or replacing
                        one of that name; other subtasks in the manifest stay as they are.
                        Repeatable. A server serving the output directory (Node, Bun, Deno)
                        switches to the new manifest without a restart; list or remove
                        subtasks with facet subtasks.
  --flops F             MACs budget of the --subtask models as a fraction of the full
                        model's (default 0.25)
  --keep R | --keep LAYER=R,LAYER=R
                        instead of --flops: the share of channels every prunable layer
                        keeps, or per layer by the name of the conv producing the channels
                        (unnamed layers stay whole; a wrong name lists the prunable ones)
  --from DIR            start from the published full model in DIR (full.ckpt and
                        full.graph.json beside its manifest) instead of running stages 1-4;
                        the output directory defaults to DIR

${ENGINE_HELP}
  Every training stage's cache key names the engine, its provider, replica count and graph
  formulation: the same config on another engine is another result (evaluation stages,
  which run the exported model in onnxruntime-node, are shared). On ort the replicas default
  to the thread count, so pin --threads or --replicas to share a cache between machines.`;

function parseFraction(flag: string, text: string): number {
  const v = Number(text);
  if (!(text.trim() !== '' && v > 0 && v <= 1)) throw new UsageError(`${flag} must be a fraction in (0, 1], got "${text}"`);
  return v;
}

/** `--keep 0.5` (every layer) or `--keep s1b0.conv1=0.25,s2b0.conv1=0.5` (per layer). */
function parseKeepRatios(text: string): number | Record<string, number> {
  if (!text.includes('=')) return parseFraction('--keep', text);
  const ratios: Record<string, number> = {};
  for (const part of text.split(',')) {
    const m = /^([^=\s]+)=(.*)$/.exec(part.trim());
    if (!m) throw new UsageError(`--keep must be a ratio or LAYER=RATIO,LAYER=RATIO, got "${part}" in "${text}"`);
    if (m[1]! in ratios) throw new UsageError(`--keep names layer "${m[1]}" twice`);
    ratios[m[1]!] = parseFraction(`--keep ${m[1]}`, m[2]!);
  }
  return ratios;
}

export const command: Command = {
  name: 'compile',
  summary: 'Run the FusionDistill pipeline (cached, resumable) and write models + report',
  help: HELP,
  async run(argv) {
    const { values } = parseFlags({
      args: argv,
      strict: true,
      options: {
        config: { type: 'string' },
        baselines: { type: 'boolean', default: false },
        quick: { type: 'boolean', default: false },
        out: { type: 'string' },
        'cache-dir': { type: 'string' },
        ...ENGINE_FLAGS,
        prefetch: { type: 'string', default: 'worker' },
        'checkpoint-every': { type: 'string' },
        seed: { type: 'string' },
        subtask: { type: 'string', multiple: true },
        flops: { type: 'string' },
        keep: { type: 'string' },
        from: { type: 'string' },
      },
    });
    if (!values.config) throw new UsageError('--config FILE is required (e.g. configs/fashion-mnist.json)');
    const prefetch = values.prefetch;
    if (prefetch !== 'worker' && prefetch !== 'inline') throw new UsageError(`--prefetch must be worker or inline, got "${prefetch}"`);
    const engineOpts = engineOptions(values);
    // Epoch-end checkpoints alone would let a kill throw away a whole 1-epoch stage (20 min
    // on 2 cores); a step checkpoint of these models costs milliseconds.
    let checkpointEverySteps = 50;
    if (values['checkpoint-every'] !== undefined) {
      checkpointEverySteps = Number(values['checkpoint-every']);
      if (!Number.isInteger(checkpointEverySteps) || checkpointEverySteps <= 0) throw new UsageError(`--checkpoint-every must be a positive integer, got "${values['checkpoint-every']}"`);
    }

    const { DEFAULT_FLOPS_FRACTION, loadCompileConfig, resolveSubtaskClasses } = await import('../../pipeline/config.ts');
    let config;
    try {
      config = await loadCompileConfig(values.config);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (values.subtask?.length) {
      if (values.flops !== undefined && values.keep !== undefined) throw new UsageError('give --flops or --keep, not both');
      const budget = values.keep !== undefined ? { keepRatios: parseKeepRatios(values.keep) } : { flopsFraction: parseFraction('--flops', values.flops ?? String(DEFAULT_FLOPS_FRACTION)) };
      const given = values.subtask.map((text) => {
        const m = /^([a-z0-9][a-z0-9_-]*)=(.+)$/.exec(text);
        if (!m) throw new UsageError(`--subtask must look like name=ClassA,ClassB (lowercase name), got "${text}"`);
        const classes = m[2]!.split(',').map((c) => c.trim()).filter(Boolean).map((c) => (/^\d+$/.test(c) ? Number(c) : c));
        return { name: m[1]!, classes, ...budget };
      });
      config = { ...config, subtasks: given };
    } else if (values.flops !== undefined || values.keep !== undefined) throw new UsageError(`--${values.flops !== undefined ? 'flops' : 'keep'} applies to --subtask models; set flopsFraction or keepRatios in the config for the others`);
    if (values.seed !== undefined) {
      const seed = Number(values.seed);
      if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be a non-negative integer, got "${values.seed}"`);
      config = { ...config, seed };
    }
    const [{ compile }, { stageImpls, loadCompileData }, { reportTableMarkdown, referenceComparisonMarkdown, formatDuration }, { createProgress }] = await Promise.all([
      import('../../pipeline/compile.ts'),
      import('../../pipeline/stages.ts'),
      import('../../pipeline/report.ts'),
      import('../../train/progress.ts'),
    ]);
    const { createEngine } = await import('../../engine/index.ts');
    const engine = await createEngine(engineOpts);
    const log = (line: string) => console.error(line);
    log(`facet compile: ${values.config} (${config.name}), engine ${engine.description}${values.baselines ? ', with baselines' : ''}${values.quick ? ', quick evaluation' : ''}`);
    const data = await loadCompileData(config);
    log(`data: ${data.train.count} training and ${data.test.count} test images of ${config.dataset.name}`);
    try {
      config.subtasks.forEach((s, i) => resolveSubtaskClasses(s, i, data.train.classNames, values.config));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const outDir = values.out ?? values.from ?? join('models', config.dataset.name);
    const cacheDir = values['cache-dir'] ?? join('.cache', 'compile');
    const sub = await import('../../pipeline/subtasks.ts');
    // Hash the subtask stages' code now, with the modules this process has just loaded.
    await (await import('../../pipeline/code.ts')).codeVersion('subtask', engine);
    const progress = () => createProgress(process.stderr);
    let full;
    if (values.from) {
      try {
        full = await sub.loadFullModel(join(values.from, sub.FULL_GRAPH), join(values.from, sub.FULL_CKPT));
      } catch (err) {
        throw new UsageError(`--from ${values.from}: ${(err as Error).message}`);
      }
      log(`full model: ${full.file} (${full.graph.arch}); stages 1-4 skipped`);
    } else {
      const result = await compile({
        config,
        cacheDir,
        outDir,
        baselines: values.baselines,
        quick: values.quick,
        data,
        impls: stageImpls({ engine, prefetch, checkpointEverySteps, progress }),
        log,
      });
      console.log(reportTableMarkdown(result.report));
      if (result.report.reference) console.log(`\n${referenceComparisonMarkdown(result.report)}`);
      console.log(`\n${result.ran.length} of ${result.plan.stages.length} stages ran; wall time ${formatDuration(result.report.wallMs)}. Wrote ${result.files.join(', ')}`);
      const distill = result.results.get('distill')!;
      const { buildGraph } = await import('../../pipeline/stages.ts');
      const graph = buildGraph(config, data.train);
      const paramsFile = join(distill.dir, 'params.ckpt');
      await sub.publishFullCheckpoint(outDir, graph, paramsFile);
      full = await sub.loadFullModel(join(outDir, sub.FULL_GRAPH), join(outDir, sub.FULL_CKPT));
    }
    if (config.subtasks.length === 0) return;
    const t0 = performance.now();
    const { configHash } = await import('../../pipeline/compile.ts');
    const results = await sub.runSubtasks({ config, data, full, cacheDir, baselines: values.baselines, quick: values.quick, progress, log, engine });
    const outcomes = await Promise.all([...results.values()].map(sub.readOutcome));
    const { publishSubtasks, updateReportSubtasks } = await import('../../pipeline/publish.ts');
    const files = await publishSubtasks(outDir, configHash(config), results, log);
    // report.html was rendered before the subtask stages ran: render it again with them. A
    // --from directory may have no report; the table below is the record then.
    files.push(...(await updateReportSubtasks(outDir, new Set(results.keys()), outcomes, log)));
    console.log(`\n${sub.subtaskTableMarkdown(outcomes)}`);
    console.log(`\n${outcomes.length} subtask(s) in ${formatDuration(performance.now() - t0)}. Wrote ${files.join(', ')}`);
  },
};
