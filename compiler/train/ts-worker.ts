/**
 * Worker threads whose entry is a TypeScript module. The worker's own module loader knows
 * nothing of .ts, so the entry is loaded through tsx's API; the sources then load the same
 * way under `tsx`, vitest and plain Node. Resolves once the worker posts `{ ready: true }`.
 */
import { Worker } from 'node:worker_threads';

export async function startTsWorker(entry: URL, workerData: unknown): Promise<Worker> {
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsxApi)}).then(({ tsImport }) => tsImport(${JSON.stringify(entry.href)}, ${JSON.stringify(entry.href)}));`;
  const worker = new Worker(code, { eval: true, workerData });
  await new Promise<void>((resolve, reject) => {
    const onMessage = (msg: { ready?: boolean; error?: string }) => {
      if (msg.ready || msg.error) {
        worker.off('message', onMessage);
        worker.off('error', reject);
        if (msg.error) {
          void worker.terminate();
          reject(new Error(msg.error));
        } else resolve();
      }
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });
  return worker;
}
