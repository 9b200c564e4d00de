/**
 * A data-parallel replica in a worker thread (replicas 1…R−1; replica 0 runs on the main
 * thread): forward and backward of its slice of each batch in its own onnxruntime session,
 * gradients and BN batch statistics back to compiler/engine/ort/trainer.ts as flat arrays
 * it hands over without a copy.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { GradientReplica } from './replica.ts';
import type { ReplicaStepRequest, ReplicaWorkerData } from './replica-pool.ts';

const data = workerData as ReplicaWorkerData;
const port = parentPort!;

let replica: GradientReplica;
try {
  replica = await GradientReplica.create(data.replica, data.layout);
} catch (err) {
  port.postMessage({ error: (err as Error).message });
  throw err;
}

port.on('message', async (req: ReplicaStepRequest) => {
  try {
    const r = await replica.step(req.params, req.batch);
    port.postMessage({ id: req.id, ...r }, [r.grads.buffer, r.stats.buffer] as ArrayBuffer[]);
  } catch (err) {
    port.postMessage({ id: req.id, error: (err as Error).message });
  }
});
port.postMessage({ ready: true });
