import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeBudget, evaluationLevels, loadCompileConfig, parseCompileConfig, resolveSubtaskClasses, subtaskBudget, type CompileConfig } from '../../compiler/pipeline/config.ts';
import { tempDirs } from './helpers/temp.ts';

const temp = tempDirs();
afterAll(temp.cleanup);

const CONFIG_DIR = new URL('../../configs/', import.meta.url).pathname;
const shipped = async () => (await readdir(CONFIG_DIR)).filter((f) => f.endsWith('.json'));

async function loadShipped(name: string): Promise<CompileConfig> {
  return loadCompileConfig(join(CONFIG_DIR, name));
}

/** A deep copy of the reference config's JSON with one edit applied. */
async function referenceWith(edit: (c: any) => void): Promise<unknown> {
  const { readFile } = await import('node:fs/promises');
  const json = JSON.parse(await readFile(join(CONFIG_DIR, 'reference-fashion-mnist.json'), 'utf8'));
  edit(json);
  return json;
}

describe('shipped configs', () => {
  it('all validate', async () => {
    const files = await shipped();
    expect(files).toEqual(expect.arrayContaining(['fashion-mnist.json', 'reference-fashion-mnist.json', 'cifar10.json', 'cifar100.json']));
    for (const f of files) await expect(loadShipped(f), f).resolves.toBeTruthy();
  });

  it('reference config is the reference recipe', async () => {
    const c = await loadShipped('reference-fashion-mnist.json');
    expect(c.dataset).toMatchObject({ name: 'fashion-mnist', validation: 0, mean: [0.286], std: [0.353] });
    expect(c.dataset.trainLimit).toBeUndefined();
    expect(c.model).toEqual({ arch: 'resnet', depth: 20, width: 1, shortcut: 'projection', head: 'pool2x2' });
    expect(c.augmentation).toEqual({ flip: true, pad: 4, cutout: 14 });
    expect(c.stages.base).toMatchObject({ epochs: 15, batchSize: 128, optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }, schedule: { type: 'onecycle', peak: 0.1, pctStart: 0.15 } });
    expect(c.stages.degradation).toMatchObject({ epochs: 5, optimizer: { type: 'radam', lr: 1e-3, weightDecay: 1e-4 }, schedule: { type: 'cosine', min: 0 }, loss: { ce: 1, feature: 1 } });
    expect(c.stages.fusion).toEqual({ bn: 'copy', recalibrationBatches: 200, recalibrationBatchSize: 128 });
    expect(c.stages.distill).toMatchObject({ epochs: 5, batchSize: 128, schedule: { type: 'step', unit: 'fraction', milestones: [0.3, 0.7, 0.9], gamma: 0.2 }, loss: { ce: 0.1, feature: 1 } });
    expect(c.stages.baselines.loss).toEqual({ ce: 1, feature: 0, logit: 0, temperature: 4 });
    // Reference grid: JPEG 1, 6, …, 101; blur/AWGN 0, 5, …, 50; S&P 0, 5, …, 25.
    expect(evaluationLevels(c.degradations.jpeg, c.evaluation, false)).toEqual(Array.from({ length: 21 }, (_, i) => 1 + 5 * i));
    expect(evaluationLevels(c.degradations.blur, c.evaluation, false)).toHaveLength(11);
    expect(evaluationLevels(c.degradations.saltpepper, c.evaluation, false)).toEqual([0, 5, 10, 15, 20, 25]);
  });

  it('CIFAR configs follow the published recipe', async () => {
    for (const [file, wd] of [['cifar10.json', 1e-4], ['cifar100.json', 5e-4]] as const) {
      const c = await loadShipped(file);
      expect(c.model.depth, file).toBe(56);
      expect([c.stages.base.epochs, c.stages.degradation.epochs, c.stages.distill.epochs]).toEqual([200, 100, 100]);
      expect(c.stages.base.optimizer).toMatchObject({ type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: wd });
      expect(c.stages.base.schedule).toEqual({ type: 'step', unit: 'epoch', milestones: [60, 120, 160], gamma: 0.2 });
      expect(c.stages.distill.schedule).toEqual({ type: 'step', unit: 'epoch', milestones: [30, 70, 90], gamma: 0.2 });
      expect(c.augmentation.cutout).toBe(16);
      expect(c.evaluation.step).toBe(1);
    }
  });

  it('defaults fill in: fusion recalibrates, baselines use CE only', () => {
    const c = parseCompileConfig({
      name: 'tiny',
      dataset: { name: 'mnist', validation: 0.1, mean: [0.5], std: [0.5] },
      model: { arch: 'resnet', depth: 8 },
      seed: 1,
      degradations: { jpeg: { min: 1, max: 101 }, blur: { min: 0, max: 50 }, awgn: { min: 0, max: 50 }, saltpepper: { min: 0, max: 25 } },
      augmentation: { flip: false, pad: 0, cutout: 0 },
      stages: {
        base: { epochs: 1, batchSize: 8, optimizer: { type: 'sgd', lr: 0.1 }, schedule: { type: 'constant' }, loss: { ce: 1 } },
        degradation: { epochs: 1, batchSize: 8, optimizer: { type: 'radam', lr: 1e-3 }, schedule: { type: 'cosine' }, loss: { ce: 1, feature: 1 } },
        distill: { epochs: 1, batchSize: 8, optimizer: { type: 'radam', lr: 1e-3 }, schedule: { type: 'cosine' }, loss: { ce: 0.1, feature: 1 } },
      },
    });
    expect(c.stages.fusion).toEqual({ bn: 'recalibrate', recalibrationBatches: 200, recalibrationBatchSize: 128 });
    expect(c.stages.baselines.loss).toEqual({ ce: 1, feature: 0, logit: 0, temperature: 4 });
    // Not in the published method: no logit distillation, teachers see clean images.
    expect(c.stages.distill.loss).toMatchObject({ logit: 0 });
    expect(c.stages.distill.teacherInput).toBe('clean');
    expect(c.model).toEqual({ arch: 'resnet', depth: 8, width: 1, shortcut: 'projection', head: 'pool2x2' });
    expect(c.evaluation).toMatchObject({ step: 1, seed: 0, quick: { levels: 3, samples: 1000 } });
    expect(c.subtasks).toEqual([]);
  });
});

describe('config errors', () => {
  const bad = async (edit: (c: any) => void) => {
    try {
      parseCompileConfig(await referenceWith(edit), 'my.json');
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('config was accepted');
  };

  it('rejects unknown keys, naming the path and the file', async () => {
    const msg = await bad((c) => (c.stages.base.optimizer.momentun = 0.9));
    expect(msg).toContain('my.json');
    expect(msg).toMatch(/stages\.base\.optimizer.*momentun/);
    expect(await bad((c) => (c.extra = 1))).toMatch(/\(root\).*extra/);
  });

  it('checks ranges and types', async () => {
    expect(await bad((c) => (c.stages.base.epochs = 0))).toMatch(/stages\.base\.epochs/);
    expect(await bad((c) => (c.stages.base.batchSize = 1.5))).toMatch(/stages\.base\.batchSize/);
    expect(await bad((c) => (c.stages.distill.optimizer.lr = -1))).toMatch(/stages\.distill\.optimizer\.lr/);
    expect(await bad((c) => (c.stages.degradation.optimizer.betas = [0.9, 1.5]))).toMatch(/stages\.degradation\.optimizer\.betas\.1/);
    expect(await bad((c) => (c.dataset.validation = 1))).toMatch(/dataset\.validation/);
    expect(await bad((c) => (c.model.depth = 21))).toMatch(/model\.depth: a CIFAR ResNet depth is 6n\+2/);
    expect(await bad((c) => (c.stages.fusion.bn = 'median'))).toMatch(/stages\.fusion\.bn/);
    expect(await bad((c) => (c.stages.base.loss = { ce: 0, feature: 0 }))).toMatch(/stages\.base\.loss: at least one/);
    expect(await bad((c) => (c.stages.base.loss = { ce: 1, feature: 1 }))).toMatch(/stages\.base\.loss: the base model has no teacher/);
    expect(await bad((c) => (c.stages.baselines.loss = { ce: 1, logit: 1 }))).toMatch(/stages\.baselines\.loss: the Vanilla and Fusing baselines have no teachers/);
    expect(await bad((c) => (c.stages.distill.teacherInput = 'noisy'))).toMatch(/stages\.distill\.teacherInput/);
    expect(await bad((c) => (c.dataset.std = [0.3, 0.3]))).toMatch(/dataset\.std: mean and std/);
  });

  it('checks degradation ranges against the defined levels', async () => {
    expect(await bad((c) => (c.degradations.jpeg = { min: 0, max: 101 }))).toMatch(/degradations\.jpeg: range 0\.\.101 leaves the defined levels 1\.\.101/);
    expect(await bad((c) => (c.degradations.saltpepper = { min: 0, max: 26 }))).toMatch(/degradations\.saltpepper/);
    expect(await bad((c) => (c.degradations.blur = { min: 10, max: 5 }))).toMatch(/degradations\.blur: min must not exceed max/);
    expect(await bad((c) => delete c.degradations.awgn)).toMatch(/degradations\.awgn/);
  });

  it('checks schedules against their stage', async () => {
    expect(await bad((c) => (c.stages.base.schedule.peak = 0.2))).toMatch(/stages\.base\.schedule\.peak: must equal optimizer\.lr \(0\.1\)/);
    expect(await bad((c) => (c.stages.distill.schedule.milestones = [0.3, 1.2]))).toMatch(/stages\.distill\.schedule\.milestones\.1: a fraction milestone/);
    expect(await bad((c) => (c.stages.distill.schedule.milestones = [0.7, 0.3]))).toMatch(/milestones\.1: milestones must increase/);
    expect(await bad((c) => (c.stages.distill.schedule = { type: 'step', unit: 'epoch', milestones: [2, 5], gamma: 0.2 }))).toMatch(/milestones\.1: epoch milestone 5 is not below the stage's 5 epochs/);
    expect(await bad((c) => (c.stages.distill.schedule = { type: 'linear' }))).toMatch(/stages\.distill\.schedule/);
  });

  it('reports unreadable files and bad JSON with the file name', async () => {
    const dir = await temp.make('facet-config-');
    const file = join(dir, 'broken.json');
    await writeFile(file, '{"name": ');
    await expect(loadCompileConfig(file)).rejects.toThrow(/broken\.json is not valid JSON/);
    await expect(loadCompileConfig(join(dir, 'missing.json'))).rejects.toThrow(/cannot read compile config .*missing\.json/);
  });
});

describe('evaluation levels and subtasks', () => {
  const evaluation = { step: 1, seed: 0, quick: { levels: 3, samples: 10 }, batchSize: 10 };

  it('full grid is every integer level; quick is evenly spaced with both ends', () => {
    expect(evaluationLevels({ min: 1, max: 101 }, evaluation, false)).toHaveLength(101);
    expect(evaluationLevels({ min: 0, max: 25 }, evaluation, false)).toEqual(Array.from({ length: 26 }, (_, i) => i));
    expect(evaluationLevels({ min: 1, max: 101 }, evaluation, true)).toEqual([1, 51, 101]);
    expect(evaluationLevels({ min: 0, max: 25 }, { ...evaluation, quick: { levels: 4, samples: 10 } }, true)).toEqual([0, 8, 17, 25]);
    expect(evaluationLevels({ min: 3, max: 3 }, evaluation, true)).toEqual([3]);
    // A step that does not divide the range stops at the last level inside it.
    expect(evaluationLevels({ min: 0, max: 12 }, { ...evaluation, step: 5 }, false)).toEqual([0, 5, 10]);
  });

  it('resolves subtask classes by name or index, with clear errors', async () => {
    const labels = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
    const c = await loadShipped('fashion-mnist.json');
    expect(resolveSubtaskClasses(c.subtasks[0]!, 0, labels)).toEqual([5, 7, 9]);
    expect(resolveSubtaskClasses({ name: 'x', classes: [1, 'Bag'], flopsFraction: 0.5 }, 2, labels)).toEqual([1, 8]);
    expect(() => resolveSubtaskClasses({ name: 'x', classes: [1, 'Boot'], flopsFraction: 0.5 }, 2, labels, 'my.json')).toThrow(/my\.json: subtasks\.2\.classes\.1: no class named "Boot"/);
    expect(() => resolveSubtaskClasses({ name: 'x', classes: [10, 1], flopsFraction: 0.5 }, 0, labels)).toThrow(/subtasks\.0\.classes\.0: class index 10 is out of range/);
  });

  it('a subtask budget is a MACs fraction (default 0.25) or keep ratios, not both', async () => {
    const withSubtasks = (subtasks: unknown[]) => referenceWith((c) => (c.subtasks = subtasks));
    const parsed = parseCompileConfig(await withSubtasks([
      { name: 'a', classes: [0, 1] },
      { name: 'b', classes: [0, 1], flopsFraction: 0.1 },
      { name: 'c', classes: [0, 1], keepRatios: 0.5 },
      { name: 'd', classes: [0, 1], keepRatios: { 's1b0.conv1': 0.25 } },
    ]));
    expect(parsed.subtasks.map(subtaskBudget)).toEqual([{ flops: 0.25 }, { flops: 0.1 }, { keep: 0.5 }, { keep: { 's1b0.conv1': 0.25 } }]);
    expect(parsed.subtasks.map((s) => describeBudget(subtaskBudget(s)))).toEqual([
      "25% of the full model's MACs",
      "10% of the full model's MACs",
      "keep 0.5 of each layer's channels",
      'keep s1b0.conv1 0.25 of the channels (other layers whole)',
    ]);
    const both = await withSubtasks([{ name: 'e', classes: [0, 1], flopsFraction: 0.5, keepRatios: 0.5 }]);
    expect(() => parseCompileConfig(both, 'both.json')).toThrow(/subtasks\.0\.keepRatios: give flopsFraction or keepRatios, not both/);
    const zero = await withSubtasks([{ name: 'e', classes: [0, 1], keepRatios: { 's1b0.conv1': 0 } }]);
    expect(() => parseCompileConfig(zero, 'zero.json')).toThrow(/subtasks\.0\.keepRatios/);
  });

  it('rejects duplicate subtask names', async () => {
    const json = await referenceWith((c) => {
      c.subtasks = [
        { name: 'a', classes: [0, 1], flopsFraction: 0.5 },
        { name: 'a', classes: [2, 3], flopsFraction: 0.5 },
      ];
    });
    expect(() => parseCompileConfig(json, 'dup.json')).toThrow(/subtasks\.1\.name: duplicate subtask "a"/);
  });
});
