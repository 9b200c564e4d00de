/**
 * Where a training step's time goes: the ort engine's fused step graph (forward, backward,
 * loss, SGD update) of ResNet-20 on 28×28×1 run under onnxruntime's own profiler on one
 * thread, kernel time summed per operator type and per layer role (the layer's stage and
 * block folded away, so `S.conv1.dx` is every block's first-conv input gradient).
 *
 *   npm run bench:train-profile -- [--batch 64] [--steps 10] [--dw flat] [--dx conv] [--bn batchnorm]
 *     [--conv nchw|nchwc8|nchwc16] [--head gap|pool2x2] [--keep R]
 *
 * `--conv` defaults to the machine's NCHWc block, as the engine's does.
 *
 * `--keep R` profiles the model a subtask fine-tunes: every block's inner channels narrowed
 * to the share R (L1 selection; the residual streams, stem and shortcuts stay whole).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { toOrtLayout } from '../compiler/engine/ort/layout.ts';
import { defaultConvKernel } from '../compiler/engine/ort/engine.ts';
import { type BnFormulation, buildTrainingGraph, type ConvInputGradient, type ConvKernel, type ConvWeightGradient, DEFAULT_FORMULATION, nextName, optimizerScalarValues } from '../compiler/engine/ort/training-graph.ts';
import { widthsForRatios } from '../compiler/catro/budget.ts';
import { baselinePrune } from '../compiler/catro/catro.ts';
import { prunableSpaces } from '../compiler/catro/spaces.ts';
import { initParams, resnet } from '../compiler/graph/builders.ts';
import { countGraph } from '../compiler/graph/count.ts';
import { Rng } from '../shared/rng.ts';

const { values } = parseArgs({
  options: { batch: { type: 'string', default: '64' }, steps: { type: 'string', default: '10' }, dw: { type: 'string' }, dx: { type: 'string' }, bn: { type: 'string' }, conv: { type: 'string' }, head: { type: 'string', default: 'gap' }, keep: { type: 'string' } },
});
const n = Number(values.batch);
const steps = Number(values.steps);
const formulation = {
  convWeightGradient: (values.dw as ConvWeightGradient) ?? DEFAULT_FORMULATION.convWeightGradient,
  convInputGradient: (values.dx as ConvInputGradient) ?? DEFAULT_FORMULATION.convInputGradient,
  bn: (values.bn as BnFormulation) ?? DEFAULT_FORMULATION.bn,
  convKernel: (values.conv as ConvKernel | undefined) ?? (await defaultConvKernel('cpu')),
};
const full = resnet({ depth: 20, width: 1, input: [28, 28, 1], classes: 10, shortcut: 'projection', head: values.head as 'gap' | 'pool2x2' });
const fullParams = initParams(full, new Rng(0));
const classes = Array.from({ length: 10 }, (_, i) => i);
const { graph, params } = values.keep === undefined
  ? { graph: full, params: fullParams }
  : baselinePrune(full, fullParams, widthsForRatios(prunableSpaces(full, 'inner'), Number(values.keep)), { classes, selector: 'l1' });
const optimizer = { kind: 'sgd', momentum: 0.9, weightDecay: 5e-4 } as const;
const tg = buildTrainingGraph(graph, { batch: n, objective: { ce: 1 }, mode: 'step', optimizer, ...formulation });
const dir = mkdtempSync(join(tmpdir(), 'facet-profile-'));
const session = await ort.InferenceSession.create(tg.bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', enableProfiling: true, profileFilePrefix: join(dir, 'step') });
const rng = new Rng(1);
const x = Float32Array.from({ length: n * 784 }, () => rng.gaussian());
const onehot = new Float32Array(n * 10);
for (let i = 0; i < n; i++) onehot[i * 10 + rng.int(0, 9)] = 1;
const state = new Map<string, ort.Tensor>();
for (const key of [...tg.trainable, ...tg.runningStats]) {
  const t = toOrtLayout(graph, key, params.get(key)!);
  state.set(key, new ort.Tensor('float32', Float32Array.from(t.data), t.shape));
}
for (const slot of tg.slots) {
  const shape = tg.shapes.get(slot)!;
  state.set(slot, new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)), shape));
}
const wall: number[] = [];
for (let step = 0; step < steps; step++) {
  const feeds: Record<string, ort.Tensor> = { input: new ort.Tensor('float32', x, [n, 28, 28, 1]), onehot: new ort.Tensor('float32', onehot, [n, 10]) };
  for (const [k, v] of Object.entries(optimizerScalarValues(optimizer, step, 0.01))) feeds[k] = new ort.Tensor('float32', new Float32Array([v]), []);
  for (const [k, t] of state) feeds[k] = t;
  const t0 = performance.now();
  const out = await session.run(feeds);
  wall.push(performance.now() - t0);
  for (const k of state.keys()) state.set(k, out[nextName(k)]!);
}
session.endProfiling();
await session.release();
const file = join(dir, readdirSync(dir).find((f) => f.endsWith('.json'))!);
const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args: { op_name?: string } }[];
rmSync(dir, { recursive: true, force: true });
const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').length;
const byOp = new Map<string, number>();
const byRole = new Map<string, [number, string]>();
let total = 0;
for (const e of events) {
  if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
  const op = e.args.op_name ?? '?';
  const role = e.name.replace(/_kernel_time$/, '').replace(/^node:/, '').replace(/s\db\d\./, 'S.').replace(/~\d+$/, '').replace(/(win|view|dw)\d\d$/, '$1');
  byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
  byRole.set(`${op} ${role}`, [(byRole.get(`${op} ${role}`)?.[0] ?? 0) + e.dur, op]);
  total += e.dur;
}
const ms = (us: number) => (us / runs / 1000).toFixed(1);
const sorted = [...wall].sort((a, b) => a - b);
console.log(`ResNet-20 28×28×1 (${values.head} head${values.keep === undefined ? '' : `, inner channels kept ${values.keep}: ${countGraph(graph).macs} of ${countGraph(full).macs} MACs`}), batch ${n}, 1 thread, formulation ${JSON.stringify(formulation)}: median step ${sorted[sorted.length >> 1]!.toFixed(1)} ms (${((1000 * n) / sorted[sorted.length >> 1]!).toFixed(0)} img/s); kernel time ${ms(total)} ms per step over ${runs} steps`);
console.log('\n| operator | ms per step | share |\n|---|---|---|');
for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1]).slice(0, 16)) console.log(`| ${op} | ${ms(us)} | ${((100 * us) / total).toFixed(1)}% |`);
console.log('\n| layer role (all blocks) | ms per step |\n|---|---|');
for (const [role, [us]] of [...byRole].sort((a, b) => b[1][0] - a[1][0]).slice(0, 20)) console.log(`| ${role} | ${ms(us)} |`);
