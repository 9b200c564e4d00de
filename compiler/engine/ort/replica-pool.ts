/** The main thread's handle on a replica worker (compiler/engine/ort/replica-worker.ts). */
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../../train/ts-worker.ts';
import type { HostBatch } from '../types.ts';
import type { ReplicaLayout, ReplicaSpec, ReplicaStepResult } from './replica.ts';

export interface ReplicaWorkerData {
  replica: ReplicaSpec;
  layout: ReplicaLayout;
}

export interface ReplicaStepRequest {
  id: number;
  params: Float32Array;
  batch: HostBatch;
}

type Reply = ({ id: number } & ReplicaStepResult) | { id: number; error: string };

export class ReplicaWorker {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: ReplicaStepResult) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (msg: Reply) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if ('error' in msg) p.reject(new Error(`replica worker: ${msg.error}`));
      else p.resolve(msg);
    });
    const fail = (err: Error) => {
      this.failure = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`replica worker exited (code ${code})`)));
  }

  static async start(data: ReplicaWorkerData): Promise<ReplicaWorker> {
    return new ReplicaWorker(await startTsWorker(new URL('./replica-worker.ts', import.meta.url), data));
  }

  /** Forward and backward on `batch` with `params` (copied to the worker). */
  step(params: Float32Array, batch: HostBatch): Promise<ReplicaStepResult> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const req: ReplicaStepRequest = { id, params, batch };
      const transfer = [batch.x.buffer, batch.labels.buffer, ...(batch.clean ? [batch.clean.buffer] : [])] as ArrayBuffer[];
      this.worker.postMessage(req, transfer);
    });
  }

  async stop(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}
