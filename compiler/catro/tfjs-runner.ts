/** A {@link TapRunner} on the tfjs graph interpreter (eval mode, current tfjs backend). */
import * as tf from '@tensorflow/tfjs-core';
import type { Graph, HostTensor, ParamStore } from '../graph/ir.ts';
import { checkParams, inferShapes } from '../graph/shapes.ts';
import { forward, type TensorParams } from '../nn/forward.ts';
import type { TapRunner, TapSession } from './catro.ts';

export const tfjsTapRunner: TapRunner = (graph: Graph, params: ParamStore): TapSession => {
  checkParams(graph, params);
  const input = inferShapes(graph).get(graph.layers.find((l) => l.kind === 'input')!.name)! as [number, number, number];
  const vars: TensorParams = new Map();
  for (const [k, t] of params) vars.set(k, tf.tensor(t.data, t.shape, 'float32'));
  return {
    async run(x: Float32Array, n: number, taps: string[]): Promise<Map<string, HostTensor>> {
      const outs = tf.tidy(() => {
        const { taps: got } = forward(graph, vars, tf.tensor4d(x, [n, ...input]), { training: false, taps });
        return taps.map((t) => got.get(t)!);
      });
      const result = new Map<string, HostTensor>();
      try {
        for (let i = 0; i < taps.length; i++) {
          result.set(taps[i]!, { shape: [...outs[i]!.shape], data: (await outs[i]!.data()) as Float32Array });
        }
      } finally {
        for (const t of outs) t.dispose();
      }
      return result;
    },
    dispose() {
      for (const t of vars.values()) t.dispose();
    },
  };
};
