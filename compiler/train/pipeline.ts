/**
 * Keeps the trainer fed: prepares the next batches while the current step runs, either in
 * one worker thread (true overlap on a second core) or on the main thread between steps
 * (overlaps only while a step awaits the device, e.g. webgpu). Batches come back in
 * order and are identical in both modes, so the mode never changes the trained weights.
 */
import type { Worker } from 'node:worker_threads';
import { type BatchRecipe, type Degrader, type ImageSource, type PreparedBatch, loadDegrader, prepareBatch } from './batches.ts';
import type { PrepRequest, PrepWorkerData } from './prep-worker.ts';
import { startTsWorker } from './ts-worker.ts';

export type PrefetchMode = 'worker' | 'inline';

export interface PipelineStats {
  /** Main-thread milliseconds spent blocked waiting for a batch. */
  waitMs: number;
  /** Main-thread milliseconds spent preparing batches (inline mode). */
  mainPrepMs: number;
  /** Milliseconds of preparation work wherever it ran. */
  prepMs: number;
  batches: number;
}

interface Pending {
  promise: Promise<PreparedBatch>;
}

export class BatchPipeline {
  readonly stats: PipelineStats = { waitMs: 0, mainPrepMs: 0, prepMs: 0, batches: 0 };
  private order: Uint32Array = new Uint32Array(0);
  private epochSeed = 0;
  private batchSize = 1;
  private stepsPerEpoch = 0;
  private cursor = 0;
  private pending = new Map<number, Pending>();
  private waiters = new Map<number, { resolve: (b: PreparedBatch) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | undefined;

  private constructor(
    private readonly source: ImageSource,
    private readonly recipe: BatchRecipe,
    readonly mode: PrefetchMode,
    private readonly depth: number,
    private readonly degrader: Degrader | undefined,
    private readonly worker: Worker | undefined,
  ) {
    worker?.on('message', (msg: { id: number; batch?: PreparedBatch; error?: string }) => {
      const waiter = this.waiters.get(msg.id);
      if (!waiter) return;
      this.waiters.delete(msg.id);
      if (msg.batch) waiter.resolve(msg.batch);
      else waiter.reject(new Error(`batch preparation failed: ${msg.error}`));
    });
    worker?.on('error', (err) => this.fail(err));
    worker?.on('exit', (code) => {
      if (code !== 0) this.fail(new Error(`batch-preparation worker exited with code ${code}`));
    });
  }

  static async create(source: ImageSource, recipe: BatchRecipe, opts: { mode: PrefetchMode; depth?: number }): Promise<BatchPipeline> {
    const depth = Math.max(1, opts.depth ?? 2);
    if (opts.mode === 'inline') {
      const degrader = recipe.degrade ? await loadDegrader() : undefined;
      return new BatchPipeline(source, recipe, 'inline', depth, degrader, undefined);
    }
    const worker = await startWorker({ source, recipe });
    return new BatchPipeline(source, recipe, 'worker', depth, undefined, worker);
  }

  /** Starts serving the batches of an epoch (drop-last), from batch `first` on. */
  startEpoch(order: Uint32Array, epochSeed: number, batchSize: number, first: number): void {
    this.pending.clear();
    this.order = order;
    this.epochSeed = epochSeed;
    this.batchSize = batchSize;
    this.stepsPerEpoch = Math.floor(order.length / batchSize);
    this.cursor = first;
  }

  /** The next batch of the current epoch; prefetches the ones after it. */
  async next(): Promise<PreparedBatch> {
    if (this.failure) throw this.failure;
    if (this.cursor >= this.stepsPerEpoch) throw new Error('pipeline: epoch exhausted');
    const index = this.cursor++;
    for (let b = index; b < Math.min(index + this.depth + 1, this.stepsPerEpoch); b++) this.request(b);
    const started = performance.now();
    const batch = await this.pending.get(index)!.promise;
    this.pending.delete(index);
    this.stats.waitMs += performance.now() - started;
    this.stats.prepMs += batch.prepMs;
    this.stats.batches++;
    return batch;
  }

  async close(): Promise<void> {
    this.pending.clear();
    if (this.worker) {
      this.worker.removeAllListeners('exit');
      await this.worker.terminate();
    }
  }

  private request(b: number): void {
    if (this.pending.has(b)) return;
    const indices = this.order.slice(b * this.batchSize, (b + 1) * this.batchSize);
    const { epochSeed } = this;
    let promise: Promise<PreparedBatch>;
    if (this.worker) {
      const id = this.nextId++;
      promise = new Promise((resolve, reject) => this.waiters.set(id, { resolve, reject }));
      const req: PrepRequest = { id, batchIndex: b, epochSeed, indices };
      this.worker.postMessage(req, [indices.buffer]);
    } else {
      // setImmediate lets a step that awaits the device run first; a batch that is needed
      // before then is prepared as soon as `next` awaits it.
      promise = new Promise((resolve, reject) =>
        setImmediate(() => {
          try {
            const batch = prepareBatch(this.source, indices, b, epochSeed, this.recipe, this.degrader);
            this.stats.mainPrepMs += batch.prepMs;
            resolve(batch);
          } catch (err) {
            reject(err as Error);
          }
        }),
      );
    }
    promise.catch(() => {}); // rejection is observed by whoever awaits it in next()
    this.pending.set(b, { promise });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
  }
}

async function startWorker(data: PrepWorkerData): Promise<Worker> {
  return startTsWorker(new URL('./prep-worker.ts', import.meta.url), data);
}
