/**
 * The load run (bench/load.ts) is only as good as its request mix: every good request must be
 * answered 200 and every bad one with its own 4xx, on the fixture models and on the shipped
 * ones (a fixed `subtask=shoes` once turned a "good" request into 422 on the shipped models).
 * Also the bench's own `workerd serve` host: our bundle answers the same there, and the
 * inspector reads the Worker isolate's heap after a forced GC.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectGarbage, loadRequests, startWorker, type RunningWorker } from '../../bench/load-workerd.ts';
import { createApp } from '../../edge/app.ts';
import { FsModelStore } from '../../edge/store-fs.ts';
import type { Manifest } from '../../shared/manifest.ts';
import { FIXTURE_MODELS, fixtureWasm } from './helpers.ts';

/** What each request of the mix is for, in order (see loadRequests). */
const EXPECTED = [200, 200, 200, 400, 400, 422, 422, 415, 400, 200];
const SHIPPED = 'models/fashion-mnist';
const manifestOf = (dir: string) => JSON.parse(readFileSync(`${dir}/manifest.json`, 'utf8')) as Manifest;

async function send(fetcher: (path: string, init: RequestInit) => Promise<Response>, dir: string) {
  const statuses: number[] = [];
  for (const r of loadRequests(manifestOf(dir))) {
    const res = await fetcher(r.path!, { method: r.method, headers: r.headers as Record<string, string>, body: r.body as BodyInit | undefined });
    await res.arrayBuffer();
    statuses.push(res.status);
  }
  return statuses;
}

describe('the load run request mix', () => {
  it.each([FIXTURE_MODELS, ...(existsSync(`${SHIPPED}/manifest.json`) ? [SHIPPED] : [])])('gets the statuses it is meant to get on %s', async (dir) => {
    const { app } = await createApp({ store: new FsModelStore(dir), wasm: await fixtureWasm() });
    expect(await send(async (path, init) => app.request(path, init), dir)).toEqual(EXPECTED);
  });

  it('asks for a subtask that exists in the manifest', () => {
    const manifest = manifestOf(FIXTURE_MODELS);
    const subtask = new URL(loadRequests(manifest)[0]!.path!, 'http://x').searchParams.get('subtask');
    expect(manifest.models.some((m) => m.subtask === subtask)).toBe(true);
    expect(() => loadRequests({ ...manifest, models: manifest.models.filter((m) => !m.subtask) })).toThrow(/at least one subtask/);
  });
});

describe('our Worker under workerd serve (the bench host without wrangler)', () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    worker = await startWorker({ worker: 'facet', host: 'workerd', modelsDir: FIXTURE_MODELS });
  }, 120_000);
  afterAll(() => worker?.stop());

  it('answers the mix as the app does in-process', async () => {
    expect(await send((path, init) => fetch(`${worker.url}${path}`, init), FIXTURE_MODELS)).toEqual(EXPECTED);
  });

  it('lets the bench read the Worker isolate heap after a forced GC', async () => {
    const heaps = await collectGarbage(worker.inspectorPort, worker.url);
    expect(heaps).toHaveLength(1);
    expect(heaps[0]!.usedBytes).toBeGreaterThan(1e6); // ORT's glue and the app are loaded
    expect(heaps[0]!.usedBytes).toBeLessThanOrEqual(heaps[0]!.totalBytes);
    expect(worker.tree().map((p) => p.role)).toEqual(['workerd']);
  });
});
