/**
 * A data-parallel replica in a worker thread: forward and backward of its slice of each
 * batch in its own onnxruntime session, gradients and BN batch statistics back to the
 * main thread (compiler/engine/ort/trainer.ts) as flat arrays it takes ownership of.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { OrtReplica } from './replica.ts';
import type { ReplicaStepRequest, ReplicaWorkerData } from './replica-pool.ts';
import { requireIo } from './session.ts';
import { Packing } from './state.ts';
import { batchStatName, gradName, STEP_OUTPUT } from './training-graph.ts';

const data = workerData as ReplicaWorkerData;
const port = parentPort!;
const params = new Packing(data.paramKeys);
const grads = new Packing(data.gradKeys);
const stats = new Packing(data.statKeys);

let replica: OrtReplica;
try {
  replica = await OrtReplica.create(data.replica);
  requireIo(replica.session, params.slots.map((s) => s.key), [...grads.slots.map((s) => gradName(s.key)), ...stats.slots.map((s) => batchStatName(s.key))], 'replica training graph');
} catch (err) {
  port.postMessage({ error: (err as Error).message });
  throw err;
}

port.on('message', async (req: ReplicaStepRequest) => {
  try {
    const feeds: Record<string, ort.Tensor> = await replica.batchFeeds(req.batch);
    for (const s of params.slots) feeds[s.key] = params.tensor(req.params, s.key);
    const g = new Float32Array(grads.size);
    const st = new Float32Array(stats.size);
    const fetches: Record<string, ort.Tensor | null> = { [STEP_OUTPUT.loss]: null, [STEP_OUTPUT.predicted]: null };
    for (const s of grads.slots) fetches[gradName(s.key)] = grads.tensor(g, s.key);
    for (const s of stats.slots) fetches[batchStatName(s.key)] = stats.tensor(st, s.key);
    const out = await replica.session.run(feeds, fetches);
    const predicted = out[STEP_OUTPUT.predicted]!.data as BigInt64Array;
    let correct = 0;
    for (let i = 0; i < req.batch.n; i++) if (Number(predicted[i]) === req.batch.labels[i]) correct++;
    port.postMessage({ id: req.id, grads: g, stats: st, loss: (out[STEP_OUTPUT.loss]!.data as Float32Array)[0]!, correct }, [g.buffer, st.buffer]);
  } catch (err) {
    port.postMessage({ id: req.id, error: (err as Error).message });
  }
});
port.postMessage({ ready: true });
