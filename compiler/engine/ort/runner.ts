/** Evaluation-mode inference on onnxruntime: the exported graph with layer taps, NHWC in and out. */
import * as ort from 'onnxruntime-node';
import type { Graph, HostTensor, ParamStore } from '../../graph/ir.ts';
import { inferShapes, inputLayer } from '../../graph/shapes.ts';
import { tapOutputName } from '../../onnx/export.ts';
import type { BnStatistics, Runner, StatisticsRunner } from '../types.ts';
import { floatTensor, type OrtSessionConfig, runnerModel, sessionOptions } from './session.ts';
import { Packing, packState } from './state.ts';
import { batchStatName, buildTrainingGraph } from './training-graph.ts';

export async function createOrtRunner(graph: Graph, params: ParamStore, outputs: string[], cfg: OrtSessionConfig): Promise<Runner> {
  const shapes = inferShapes(graph);
  for (const o of outputs) if (!shapes.has(o)) throw new Error(`runner ${graph.arch}: "${o}" is not a layer`);
  const taps = outputs.filter((o) => o !== graph.output);
  const session = await ort.InferenceSession.create(runnerModel(graph, params, taps), sessionOptions(cfg));
  const [h, w, c] = inputLayer(graph).shape;
  return {
    async run(x, n, names) {
      for (const name of names) {
        if (name !== graph.output && !taps.includes(name)) throw new Error(`runner ${graph.arch}: "${name}" was not among the outputs this runner was made for`);
      }
      if (x.length !== n * h * w * c) throw new Error(`runner ${graph.arch}: ${x.length} values are not ${n} images of ${h}×${w}×${c}`);
      const fetch = names.map((name) => tapOutputName(name, 'nhwc', graph));
      const out = await session.run({ input: floatTensor(x, [n, h, w, c]) }, fetch);
      const result = new Map<string, HostTensor>();
      names.forEach((name, i) => {
        const t = out[fetch[i]!]!;
        result.set(name, { shape: [...t.dims], data: t.data as Float32Array });
      });
      return result;
    },
    async dispose() {
      await session.release();
    },
  };
}

/** BN batch statistics from the training-mode forward graph, one session per batch size. */
export async function createOrtStatisticsRunner(graph: Graph, params: ParamStore, cfg: OrtSessionConfig): Promise<StatisticsRunner> {
  const sessions = new Map<number, { session: ort.InferenceSession; packing: Packing; feeds: Record<string, ort.Tensor> }>();
  const [h, w, c] = inputLayer(graph).shape;
  const open = async (n: number) => {
    const tg = buildTrainingGraph(graph, { batch: n, objective: { ce: 1 }, mode: 'statistics' });
    const session = await ort.InferenceSession.create(tg.bytes, sessionOptions(cfg));
    const packing = new Packing(tg.trainable.map((k) => [k, tg.shapes.get(k)!]));
    const flat = new Float32Array(packing.size);
    packState(graph, packing, flat, params);
    const feeds = Object.fromEntries(packing.slots.map((s) => [s.key, packing.tensor(flat, s.key)]));
    const entry = { session, packing: new Packing(tg.runningStats.map((k) => [k, tg.shapes.get(k)!])), feeds };
    sessions.set(n, entry);
    return entry;
  };
  return {
    async run(x, n) {
      if (x.length !== n * h * w * c) throw new Error(`statistics ${graph.arch}: ${x.length} values are not ${n} images of ${h}×${w}×${c}`);
      const entry = sessions.get(n) ?? (await open(n));
      const out = await entry.session.run({ ...entry.feeds, input: floatTensor(x, [n, h, w, c]) });
      const stats: BnStatistics = new Map();
      for (const s of entry.packing.slots) {
        if (!s.key.endsWith('/mean')) continue;
        const layer = s.key.slice(0, -'/mean'.length);
        stats.set(layer, { mean: out[batchStatName(s.key)]!.data as Float32Array, variance: out[batchStatName(`${layer}/variance`)]!.data as Float32Array });
      }
      return stats;
    },
    async dispose() {
      for (const e of sessions.values()) await e.session.release();
      sessions.clear();
    },
  };
}
