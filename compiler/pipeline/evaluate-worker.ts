/**
 * An evaluation worker (compiler/pipeline/evaluate-workers.ts): one single-threaded
 * onnxruntime session per model; per pass, the test images degraded once with the pass's
 * seed and every model run on them, batch by batch, exactly as evaluate() runs one model.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { degradeBatch } from '../../shared/degrade.ts';
import { batchToNCHW } from '../../shared/preprocess.ts';
import { argmaxCorrect, levelRng, onnxClassifier, type Classifier } from './evaluate.ts';
import type { EvalPassReply, EvalPassRequest, EvalWorkerData } from './evaluate-workers.ts';

const data = workerData as EvalWorkerData;
const port = parentPort!;
const { test, count, batchSize } = data;
const { height: h, width: w, channels: c } = test;
const per = h * w * c;
const classes = test.classNames.length;

let models: { classify: Classifier }[];
try {
  models = await Promise.all(data.models.map((m) => onnxClassifier(m, 1)));
} catch (err) {
  port.postMessage({ error: (err as Error).message });
  throw err;
}

async function correctOn(images: Uint8Array): Promise<number[]> {
  const correct = models.map(() => 0);
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const input = batchToNCHW(images.subarray(start * per, (start + n) * per), n, h, w, c, data);
    for (const [m, model] of models.entries()) {
      const logits = await model.classify(input, { n, c, h, w });
      if (logits.length !== n * classes) throw new Error(`model ${m} returned ${logits.length} logits for ${n} images of ${classes} classes`);
      correct[m]! += argmaxCorrect(logits, test.labels, start, n, classes);
    }
  }
  return correct;
}

port.on('message', async ({ id, pass }: EvalPassRequest) => {
  let reply: EvalPassReply;
  try {
    const images = pass.kind === 'clean'
      ? test.images
      : degradeBatch(test.images, count, h, w, c, pass.kind, new Uint8Array(count).fill(pass.level!), levelRng(data.seed, pass.kind, pass.level!));
    reply = { id, correct: await correctOn(images) };
  } catch (err) {
    reply = { id, error: (err as Error).message };
  }
  port.postMessage(reply);
});
port.postMessage({ ready: true });
