/**
 * Batch-preparation worker: holds a copy of the training images and prepares batches on
 * request, so degradations run on the second core while the main thread trains.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type BatchRecipe, type Degrader, type ImageSource, loadDegrader, prepareBatch } from './batches.ts';

export interface PrepWorkerData {
  source: ImageSource;
  recipe: BatchRecipe;
}

export interface PrepRequest {
  id: number;
  batchIndex: number;
  epochSeed: number;
  indices: Uint32Array;
}

const { source, recipe } = workerData as PrepWorkerData;
const port = parentPort!;
const degrader: Degrader | undefined = recipe.degrade ? await loadDegrader() : undefined;

port.on('message', (req: PrepRequest) => {
  try {
    const batch = prepareBatch(source, req.indices, req.batchIndex, req.epochSeed, recipe, degrader);
    const transfer = [batch.x.buffer, batch.labels.buffer];
    if (batch.clean) transfer.push(batch.clean.buffer);
    if (batch.levels) transfer.push(batch.levels.buffer);
    port.postMessage({ id: req.id, batch }, transfer as ArrayBuffer[]);
  } catch (err) {
    port.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) });
  }
});
port.postMessage({ ready: true });
