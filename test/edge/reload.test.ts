/**
 * Switching the model set while serving (edge/served-models.ts), in process: a new manifest
 * published into the models folder with the compiler's own atomic publish, picked up by
 * `POST /admin/reload` (the servers' folder watch calls the same check; test/edge/hot-reload.test.ts
 * runs it on real servers).
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { commitModels, readManifest } from '../../compiler/pipeline/publish.ts';
import { createApp, type FacetApp } from '../../edge/app.ts';
import { FsModelStore } from '../../edge/store-fs.ts';
import type { Manifest } from '../../shared/manifest.ts';
import { FIXTURE_MODELS, fixtureWasm, image } from './helpers.ts';
import { BOTTOMS } from './new-subtask.ts';

type Json = any;

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A copy of the fixture models, served by an in-process app that logs into `log`. */
async function servedCopy(options: { apiKey?: string } = {}): Promise<{ dir: string; facet: FacetApp; log: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'facet-reload-'));
  dirs.push(dir);
  cpSync(FIXTURE_MODELS, dir, { recursive: true });
  const log: string[] = [];
  const facet = await createApp({ store: new FsModelStore(dir), wasm: await fixtureWasm(), reloadLog: { info: (l) => log.push(l), error: (l) => log.push(l) }, ...options });
  return { dir, facet, log };
}

/** Publish into `dir` as a compile does: `bottoms` added, `shoes` removed (its file deleted once the manifest is committed). */
async function addBottomsRemoveShoes(dir: string): Promise<Manifest> {
  const before = (await readManifest(dir))!;
  await commitModels(dir, [BOTTOMS], ([bottoms]) => ({ ...before, createdAt: new Date().toISOString(), models: [...before.models.filter((m) => m.id !== 'shoes'), bottoms!] }));
  return (await readManifest(dir))!;
}

const fileSha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const classify = (facet: FacetApp, query: string) => facet.app.request(`/v1/classify${query}`, { method: 'POST', body: image('shirt.png'), headers: { 'content-type': 'image/png' } });
const reload = (facet: FacetApp, headers: Record<string, string> = {}) => facet.app.request('/admin/reload', { method: 'POST', headers });
const modelOf = async (res: Response) => {
  expect(res.status).toBe(200);
  return ((await res.json()) as Json).model.id as string;
};
const entry = (facet: FacetApp, id: string) => facet.manifest.models.find((m) => m.id === id)!;

describe('model set switch', () => {
  it('/v1/models and /readyz name the manifest served: the sha256 of its file, its createdAt, and since when', async () => {
    const { dir, facet } = await servedCopy();
    const models = (await (await facet.app.request('/v1/models')).json()) as Json;
    const ready = (await (await facet.app.request('/readyz')).json()) as Json;
    expect(models.manifest).toEqual(ready.manifest);
    expect(models.manifest.sha256).toBe(fileSha256(join(dir, 'manifest.json')));
    expect(models.manifest.createdAt).toBe('2026-11-26T00:00:00Z');
    expect(Date.parse(models.manifest.servedSince)).toBeLessThanOrEqual(Date.now());
  });

  it('serves a published manifest after a check: the new subtask answers the next request for its classes, unchanged models keep their sessions, removed ones are released', async () => {
    const { dir, facet, log } = await servedCopy();
    const { pool } = facet;
    // Every model in use, so that each has a session to keep or release.
    expect(await modelOf(await classify(facet, '?classes=Shirt,Coat'))).toBe('tops');
    expect(await modelOf(await classify(facet, '?classes=Sneaker,Sandal'))).toBe('shoes');
    expect(await modelOf(await classify(facet, '?classes=Trouser,Dress'))).toBe('full');
    const [full, tops, shoes] = await Promise.all(['full', 'tops', 'shoes'].map((id) => pool.session(entry(facet, id))));
    const shoesReleased = vi.spyOn(shoes!, 'release');
    expect(pool.sessionFiles()).toEqual(['full.onnx', 'shoes.onnx', 'tops.onnx']);
    const oldSha = facet.models.current.sha256;

    const published = await addBottomsRemoveShoes(dir);
    // Nothing changes until a check: a publish is not a request.
    expect(await modelOf(await classify(facet, '?classes=Trouser,Dress'))).toBe('full');
    const res = await reload(facet);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    const newSha = fileSha256(join(dir, 'manifest.json'));
    expect(body).toMatchObject({ status: 'reloaded', manifest: { sha256: newSha, createdAt: published.createdAt }, models: ['full', 'tops', 'bottoms'] });
    expect(log).toEqual([`facet edge: now serving manifest ${newSha} from ${dir} (+bottoms, −shoes, full, tops kept)`]);

    const next = (await (await classify(facet, '?classes=Trouser,Dress')).json()) as Json;
    expect(next.model).toMatchObject({ id: 'bottoms', subtask: 'bottoms', macs: BOTTOMS.entry.macs });
    expect(next.predictions.map((p: Json) => p.label).sort()).toEqual(['Dress', 'Trouser']);
    expect(((await (await classify(facet, '?subtask=shoes')).json()) as Json).error).toMatchObject({ code: 'unknown_subtask', message: expect.stringContaining('subtasks: tops, bottoms') });
    expect(await modelOf(await classify(facet, '?classes=Sneaker,Sandal'))).toBe('full');
    // Kept: the very same sessions, not new ones; the removed model's was released.
    expect(await pool.session(entry(facet, 'full'))).toBe(full);
    expect(await pool.session(entry(facet, 'tops'))).toBe(tops);
    await vi.waitFor(() => expect(shoesReleased).toHaveBeenCalledTimes(1));
    expect(pool.sessionFiles()).toEqual([published.models[2]!.file, 'full.onnx', 'tops.onnx'].sort());
    const models = (await (await facet.app.request('/v1/models')).json()) as Json;
    expect(models.manifest.sha256).toBe(newSha);
    expect(models.models.map((m: Json) => [m.id, m.state])).toEqual([['full', 'ready'], ['tops', 'ready'], ['bottoms', 'ready']]);
    expect(newSha).not.toBe(oldSha);

    expect(await (await reload(facet)).json()).toMatchObject({ status: 'unchanged', manifest: { sha256: newSha } });
    expect(log).toHaveLength(1);
  });

  it('a request in flight finishes on the set it started with; the model it used is released after it', async () => {
    const { dir, facet } = await servedCopy();
    const shoes = await facet.pool.session(entry(facet, 'shoes'));
    const released = vi.spyOn(shoes, 'release');
    // The request holds its set from its first byte; its body arrives only after the switch.
    let send!: () => void;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        send = () => {
          controller.enqueue(image('sneaker.png'));
          controller.close();
        };
      },
    });
    const inFlight = facet.app.request('/v1/classify?subtask=shoes', { method: 'POST', body, headers: { 'content-type': 'image/png' }, duplex: 'half' } as RequestInit);
    await new Promise((r) => setTimeout(r, 20));

    await addBottomsRemoveShoes(dir);
    expect(((await (await reload(facet)).json()) as Json).status).toBe('reloaded');
    // New requests see the new set; the old one is still held, and so is its shoes session.
    expect(((await (await classify(facet, '?subtask=shoes')).json()) as Json).error.code).toBe('unknown_subtask');
    expect(facet.pool.sessionFiles()).toContain('shoes.onnx');
    expect(released).not.toHaveBeenCalled();

    send();
    const answer = (await (await inFlight).json()) as Json;
    expect(answer.model.id).toBe('shoes');
    expect(answer.predictions).toHaveLength(3);
    await vi.waitFor(() => expect(released).toHaveBeenCalledTimes(1));
    expect(facet.pool.sessionFiles()).not.toContain('shoes.onnx');
  });

  it('refuses a manifest that fails validation, and one naming a file whose sha256 does not match, with one log line each; the old set keeps serving', async () => {
    const { dir, facet, log } = await servedCopy();
    const served = facet.models.current.sha256;
    const stillServing = async () => {
      expect(await modelOf(await classify(facet, '?classes=Sneaker,Sandal'))).toBe('shoes');
      expect(((await (await facet.app.request('/v1/models')).json()) as Json).manifest.sha256).toBe(served);
    };
    const refused = async (message: RegExp) => {
      const res = await reload(facet);
      expect(res.status).toBe(422);
      const body = (await res.json()) as Json;
      expect(body.error.code).toBe('reload_refused');
      expect(body.error.message).toMatch(message);
      expect(body.manifest.sha256).toBe(served);
    };
    const good = readFileSync(join(dir, 'manifest.json'), 'utf8');

    writeFileSync(join(dir, 'manifest.json'), good.slice(0, 200));
    await refused(new RegExp(`${dir}/manifest.json is not JSON`));
    await stillServing();

    const invalid = JSON.parse(good);
    invalid.models[1].macs = -1;
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(invalid));
    await refused(/is not a valid Facet manifest:\n {2}models\.1\.macs/);
    await stillServing();

    // A publish whose new model file is not the one its manifest names (here: a byte changed after).
    writeFileSync(join(dir, 'manifest.json'), good);
    const published = await addBottomsRemoveShoes(dir);
    const bottoms = join(dir, published.models[2]!.file);
    const bytes = readFileSync(bottoms);
    bytes[bytes.length - 3]! ^= 1;
    writeFileSync(bottoms, bytes);
    await refused(/model "bottoms": .*bottoms\.[0-9a-f]{12}\.onnx has sha256 [0-9a-f]{64}; the manifest says [0-9a-f]{64}/);
    await refused(/model "bottoms"/);
    // shoes.onnx is gone from the folder (the publish removed it), but its session was loaded: the old set still answers with it.
    await stillServing();
    expect(log.filter((l) => l.includes('reload refused'))).toHaveLength(3);
    expect(log.every((l) => l.startsWith(`facet edge: reload refused, still serving manifest ${served}: `))).toBe(true);

    // Put right, it is served.
    bytes[bytes.length - 3]! ^= 1;
    writeFileSync(bottoms, bytes);
    expect(((await (await reload(facet)).json()) as Json).status).toBe('reloaded');
    expect(await modelOf(await classify(facet, '?classes=Trouser,Dress'))).toBe('bottoms');
  });

  it('POST /admin/reload needs the API key when one is set', async () => {
    const { facet } = await servedCopy({ apiKey: 'k3y' });
    const denied = await reload(facet);
    expect(denied.status).toBe(401);
    expect(((await denied.json()) as Json).error.code).toBe('unauthorized');
    const ok = await reload(facet, { authorization: 'Bearer k3y' });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as Json).status).toBe('unchanged');
  });
});
