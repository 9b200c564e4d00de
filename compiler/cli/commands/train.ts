/** `facet train`: train one model on a data set, with resumable checkpoints. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../../shared/rng.ts';
import { DEGRADATION_KINDS, type DegradationKind } from '../../../shared/manifest.ts';
import { type Command, UsageError, parseFlags } from '../command.ts';
import { DATASET_IDS, type DatasetId, loadDataset } from '../../data/registry.ts';
import { splitValidation, take } from '../../data/split.ts';
import { buildGraph } from '../../graph/arch.ts';
import { initParams } from '../../graph/builders.ts';
import type { Shortcut } from '../../graph/builders.ts';
import { createEngine } from '../../engine/index.ts';
import { ENGINE_FLAGS, ENGINE_HELP, engineOptions } from '../engine-flags.ts';
import { writeFileAtomic } from '../../train/checkpoint.ts';
import { DATASET_TRAINING_DEFAULTS, channelStats } from '../../train/defaults.ts';
import { train } from '../../train/loop.ts';
import type { OptimizerConfig } from '../../train/optimizers.ts';
import { createProgress } from '../../train/progress.ts';
import type { ScheduleConfig } from '../../train/schedules.ts';

const HELP = `Usage: facet train --dataset NAME --arch ARCH --epochs N --out DIR [options]

Trains one model on the training split (minus a held-out validation split, which selects
the best epoch; the test split is never used). Writes to DIR:
  last.ckpt    full training state after every epoch (and every --checkpoint-every steps)
  best.ckpt    parameters of the epoch with the best validation accuracy
  graph.json   the model graph;  train.json  the configuration, history and speed figures
A run killed at any point continues with --resume and ends with the same weights.

Data and model
  --dataset NAME        ${DATASET_IDS.join(', ')}
  --data-dir D          where the data set is (default: the loader's search path)
  --limit N             use only N training images, class-balanced (quick runs)
  --arch ARCH           resnet20, resnet32, resnet56 (6n+2), vgg11/13/16/19, vgg-small
  --width W             channel multiplier (default 1)
  --head H              gap or pool2x2 (ResNet), gap or flatten (VGG)
  --shortcut S          projection (default) or A
Training
  --epochs N            (required)
  --batch N             batch size (default 128)
  --optimizer O         sgd (default) or radam
  --lr X                learning rate, the peak for onecycle (default 0.1 sgd, 1e-3 radam)
  --momentum X          SGD momentum (default 0.9); --nesterov for Nesterov momentum
  --wd X                weight decay, L2 as in PyTorch (default 5e-4 sgd, 1e-4 radam)
  --schedule S          onecycle (default for sgd), cosine (default for radam), step, constant
  --pct-start X         onecycle warm-up share (default 0.15)
  --milestones A,B,..   step schedule: epochs (or fractions < 1) where lr is multiplied by --gamma (default 0.2)
  --flip / --no-flip    horizontal flips (default: on, except mnist)
  --pad K               zero-pad-K random crop (default 4; mnist 2)
  --cutout S            Cutout hole side in pixels (default 0)
  --degrade K1,K2,..    train on degraded images: ${DEGRADATION_KINDS.join(', ')}; the batch is split evenly
  --val X               validation share of the training set (default 0.1; 0 = none, last epoch kept)
  --seed N              seed of initialisation, split, shuffling and augmentation (default 0)
Running
  --prefetch P          worker (default: prepares batches on a second thread) or inline
  --checkpoint-every N  also checkpoint every N steps (default 50)
  --resume              continue from DIR/last.ckpt
Ctrl-C stops after the current step and checkpoints it; --resume continues from there
(on the same engine: a checkpoint names the engine that wrote it).

${ENGINE_HELP}`;

const number = (flag: string, text: string | undefined, fallback: number, check: (v: number) => boolean, what: string): number => {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || !check(v)) throw new UsageError(`${flag} must be ${what}, got "${text}"`);
  return v;
};
const positiveInt = (v: number) => Number.isInteger(v) && v > 0;

export const command: Command = {
  name: 'train',
  summary: 'Train a model on a data set (resumable checkpoints, validation-selected best)',
  help: HELP,
  async run(argv) {
    const { values } = parseFlags({
      args: argv,
      strict: true,
      options: {
        dataset: { type: 'string' },
        'data-dir': { type: 'string' },
        limit: { type: 'string' },
        arch: { type: 'string' },
        width: { type: 'string' },
        head: { type: 'string' },
        shortcut: { type: 'string' },
        epochs: { type: 'string' },
        batch: { type: 'string' },
        optimizer: { type: 'string' },
        lr: { type: 'string' },
        momentum: { type: 'string' },
        nesterov: { type: 'boolean' },
        wd: { type: 'string' },
        schedule: { type: 'string' },
        'pct-start': { type: 'string' },
        milestones: { type: 'string' },
        gamma: { type: 'string' },
        flip: { type: 'boolean' },
        'no-flip': { type: 'boolean' },
        pad: { type: 'string' },
        cutout: { type: 'string' },
        degrade: { type: 'string' },
        val: { type: 'string' },
        seed: { type: 'string' },
        ...ENGINE_FLAGS,
        prefetch: { type: 'string' },
        'checkpoint-every': { type: 'string' },
        resume: { type: 'boolean' },
        out: { type: 'string' },
      },
    });
    const dataset = values.dataset as DatasetId | undefined;
    if (!dataset) throw new UsageError('--dataset is required (e.g. --dataset fashion-mnist)');
    if (!(DATASET_IDS as readonly string[]).includes(dataset)) throw new UsageError(`--dataset must be one of ${DATASET_IDS.join(', ')}, got "${dataset}"`);
    if (!values.arch) throw new UsageError('--arch is required (e.g. --arch resnet20)');
    if (!values.out) throw new UsageError('--out is required (the run directory)');
    if (values.epochs === undefined) throw new UsageError('--epochs is required');
    const epochs = number('--epochs', values.epochs, 0, positiveInt, 'a positive integer');
    const batchSize = number('--batch', values.batch, 128, positiveInt, 'a positive integer');
    const seed = number('--seed', values.seed, 0, (v) => Number.isSafeInteger(v) && v >= 0, 'a non-negative integer');
    const valShare = number('--val', values.val, 0.1, (v) => v >= 0 && v < 1, 'in [0, 1)');
    const engineOpts = engineOptions(values);
    const prefetch = values.prefetch ?? 'worker';
    if (prefetch !== 'worker' && prefetch !== 'inline') throw new UsageError(`--prefetch must be worker or inline, got "${prefetch}"`);
    if (values.shortcut !== undefined && values.shortcut !== 'A' && values.shortcut !== 'projection') {
      throw new UsageError(`--shortcut must be A or projection, got "${values.shortcut}"`);
    }
    if (values.flip && values['no-flip']) throw new UsageError('--flip and --no-flip contradict each other');

    const optimizerKind = values.optimizer ?? 'sgd';
    if (optimizerKind !== 'sgd' && optimizerKind !== 'radam') throw new UsageError(`--optimizer must be sgd or radam, got "${optimizerKind}"`);
    const isSgd = optimizerKind === 'sgd';
    const lr = number('--lr', values.lr, isSgd ? 0.1 : 1e-3, (v) => v > 0, 'a positive number');
    const weightDecay = number('--wd', values.wd, isSgd ? 5e-4 : 1e-4, (v) => v >= 0, 'a non-negative number');
    const optimizer: OptimizerConfig = isSgd
      ? { kind: 'sgd', momentum: number('--momentum', values.momentum, 0.9, (v) => v >= 0 && v < 1, 'in [0, 1)'), nesterov: values.nesterov ?? false, weightDecay }
      : { kind: 'radam', weightDecay };
    const schedule = parseSchedule(values.schedule ?? (isSgd ? 'onecycle' : 'cosine'), lr, values);

    const degradeKinds = values.degrade?.split(',').map((k) => k.trim()) as DegradationKind[] | undefined;
    for (const k of degradeKinds ?? []) {
      if (!(DEGRADATION_KINDS as readonly string[]).includes(k)) throw new UsageError(`--degrade: unknown degradation "${k}" (expected ${DEGRADATION_KINDS.join(', ')})`);
    }
    if (degradeKinds && batchSize % degradeKinds.length !== 0) {
      throw new UsageError(`--batch ${batchSize} cannot be split evenly among ${degradeKinds.length} degradations`);
    }

    const engine = await createEngine(engineOpts);
    let full = await loadDataset({ name: dataset, split: 'train', dir: values['data-dir'] });
    if (values.limit !== undefined) full = take(full, number('--limit', values.limit, 0, positiveInt, 'a positive integer'), seed);
    const { train: trainSet, val } = valShare > 0 ? splitValidation(full, { fraction: valShare, seed }) : { train: full, val: undefined };

    const defaults = dataset === 'folder' ? undefined : DATASET_TRAINING_DEFAULTS[dataset];
    const stats = defaults ?? channelStats(trainSet.images, trainSet.channels);
    const augment = {
      flip: values['no-flip'] ? false : values.flip ? true : (defaults?.augment.flip ?? true),
      pad: number('--pad', values.pad, defaults?.augment.pad ?? 4, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer'),
      cutout: number('--cutout', values.cutout, 0, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer'),
    };
    let graph;
    try {
      graph = buildGraph({
        arch: values.arch,
        width: values.width === undefined ? undefined : number('--width', values.width, 1, (v) => v > 0, 'a positive number'),
        input: [trainSet.height, trainSet.width, trainSet.channels],
        classes: trainSet.classNames.length,
        shortcut: values.shortcut as Shortcut | undefined,
        head: values.head,
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const outDir = values.out;
    mkdirSync(outDir, { recursive: true });
    writeFileAtomic(join(outDir, 'graph.json'), JSON.stringify(graph, null, 1));
    console.error(
      `facet train: ${graph.arch} on ${dataset} (${trainSet.count} train, ${val?.count ?? 0} val images), engine ${engine.description}, ` +
        `${epochs} epochs of ${Math.floor(trainSet.count / batchSize)} steps, batch ${batchSize}, prefetch ${prefetch}`,
    );
    const normalize = { mean: stats.mean, std: stats.std };
    // First Ctrl-C: finish the step, checkpoint, exit; a second one kills at once.
    const interrupt = new AbortController();
    const onSigint = () => {
      console.error('\nfacet train: stopping after this step (Ctrl-C again to kill now)');
      process.off('SIGINT', onSigint);
      interrupt.abort();
    };
    process.on('SIGINT', onSigint);
    const result = await train({
      graph,
      params: initParams(graph, new Rng(seed)),
      train: trainSet,
      val,
      epochs,
      batchSize,
      optimizer,
      schedule,
      augment,
      degrade: degradeKinds ? { kinds: degradeKinds } : undefined,
      normalize,
      seed,
      engine,
      outDir,
      resume: values.resume ?? false,
      checkpointEverySteps: number('--checkpoint-every', values['checkpoint-every'], 50, positiveInt, 'a positive integer'),
      prefetch,
      progress: createProgress(process.stderr),
      signal: interrupt.signal,
    }).finally(() => process.off('SIGINT', onSigint));
    const summary = {
      dataset,
      engine: engine.description,
      arch: graph.arch,
      epochs,
      batchSize,
      optimizer,
      schedule,
      augment,
      degrade: degradeKinds ?? null,
      normalize,
      seed,
      validation: valShare,
      trainImages: trainSet.count,
      valImages: val?.count ?? 0,
      best: result.best && { epoch: result.best.epoch, valAccuracy: result.best.valAccuracy },
      history: result.history,
      stats: result.stats,
    };
    writeFileAtomic(join(outDir, 'train.json'), JSON.stringify(summary, null, 2));
    const best = result.best;
    console.log(
      `best epoch ${best ? best.epoch + 1 : '—'}: val accuracy ${best && best.valAccuracy >= 0 ? (100 * best.valAccuracy).toFixed(2) + '%' : '—'}; ` +
        `${result.stats.imagesPerSecond.toFixed(1)} img/s, data preparation ${(100 * result.stats.dataShare).toFixed(1)}% of step time; written to ${outDir}`,
    );
  },
};

function parseSchedule(kind: string, lr: number, values: { 'pct-start'?: string; milestones?: string; gamma?: string }): ScheduleConfig {
  switch (kind) {
    case 'constant':
      return { kind: 'constant', lr };
    case 'cosine':
      return { kind: 'cosine', lr };
    case 'onecycle':
      return { kind: 'onecycle', peak: lr, pctStart: number('--pct-start', values['pct-start'], 0.15, (v) => v > 0 && v < 1, 'in (0, 1)') };
    case 'step': {
      if (!values.milestones) throw new UsageError('--schedule step needs --milestones (e.g. 60,120,160 or 0.3,0.7,0.9)');
      const milestones = values.milestones.split(',').map((m) => number('--milestones', m, 0, (v) => v > 0, 'positive numbers'));
      const unit = milestones.every((m) => m < 1) ? 'fraction' : 'epoch';
      return { kind: 'step', lr, gamma: number('--gamma', values.gamma, 0.2, (v) => v > 0, 'a positive number'), milestones, unit };
    }
    default:
      throw new UsageError(`--schedule must be onecycle, cosine, step or constant, got "${kind}"`);
  }
}
