/**
 * Hot reload on real servers (Node, Bun, Deno; and Node with its folder watch off, on the
 * periodic check alone), all serving one models folder under steady requests, while a subtask
 * is added (the compiler's publish) and another removed (`facet subtasks remove`), and then a
 * corrupt manifest and one naming a file with another sha256 are written into the folder.
 *
 * Every answer must be whole: status 200 and equal to the answer one of the folder's model sets
 * gives (computed in process by the same app over the same folder), from the set served when
 * the request started or a later one; never a failure or a mix. A set is "served" once the
 * server's /v1/models names its manifest; the next request for the new subtask's classes must
 * get it. No server restarts.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../compiler/pipeline/cache.ts';
import { commitModels, readManifest } from '../../compiler/pipeline/publish.ts';
import { createApp, type FacetApp } from '../../edge/app.ts';
import { sha256Hex } from '../../edge/store.ts';
import { FsModelStore } from '../../edge/store-fs.ts';
import { FIXTURE_MODELS, fixtureWasm, image } from './helpers.ts';
import { BOTTOMS } from './new-subtask.ts';
import { runtimeBinary, startServer, type RunningServer, type RuntimeName } from './servers.ts';

type Json = any;

/** Queries whose model changes with the set: Trouser,Dress (full → bottoms), Sneaker,Sandal (shoes → full); and two that do not. */
const QUERIES = ['?classes=Trouser,Dress', '?classes=Sneaker,Sandal', '?classes=Shirt,Coat', '?top_k=3'];
const IMAGES = ['shirt.png', 'sneaker.png', 'trouser.png'];

interface Target {
  name: string;
  runtime: RuntimeName;
  env: Record<string, string>;
  skip?: string;
}

// Watching servers get a periodic check too rare to matter here, so that the watch is what is tested.
const WATCH = { FACET_RELOAD_POLL_MS: '600000' };
const TARGETS: Target[] = [
  { name: 'node', runtime: 'node', env: WATCH },
  { name: 'bun', runtime: 'bun', env: WATCH, skip: runtimeBinary('bun').reason },
  { name: 'deno', runtime: 'deno', env: WATCH, skip: runtimeBinary('deno').reason },
  { name: 'node, periodic check only', runtime: 'node', env: { FACET_RELOAD_WATCH: '0', FACET_RELOAD_POLL_MS: '200' } },
];

interface Answer {
  query: number;
  image: number;
  started: number;
  ended: number;
  status: number;
  body: Json;
}

const dir = mkdtempSync(join(tmpdir(), 'facet-hot-reload-'));
const servers: { target: Target; server: RunningServer; answers: Answer[] }[] = [];
/** The app the expected answers come from; it serves `dir` too, switched by POST /admin/reload. */
let reference: FacetApp;
/** Per set: its manifest's sha256, and the answer to each query × image. */
const sets: { sha256: string; answers: Json[][] }[] = [];
let loading = true;
let load: Promise<void>;

const post = (url: string, query: number, img: number) => fetch(`${url}/v1/classify${QUERIES[query]}`, { method: 'POST', body: image(IMAGES[img]!), headers: { 'content-type': 'image/png' } });
const withoutTiming = (body: Json) => ({ ...body, timing: undefined });

/** Same model and predictions; scores up to the last bits of Math.exp, which differ between V8 and JavaScriptCore. */
function sameAnswer(got: Json, want: Json): boolean {
  const strip = (b: Json) => JSON.stringify({ ...withoutTiming(b), predictions: b.predictions?.map((p: Json) => [p.label, p.index]) });
  if (strip(got) !== strip(want)) return false;
  return got.predictions.every((p: Json, i: number) => Math.abs(p.score - want.predictions[i].score) < 1e-12);
}

/** The sets (indices into `sets`) whose answer `a` is. */
const setsOf = (a: Answer) => sets.flatMap((s, k) => (a.status === 200 && sameAnswer(a.body, s.answers[a.query]![a.image]) ? [k] : []));

/** Record what the reference app answers now, as the next set; its manifest must be the one in the folder. */
async function recordSet(): Promise<void> {
  const sha256 = await sha256Hex(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const check = (await (await reference.app.request('/admin/reload', { method: 'POST' })).json()) as Json;
  expect(check.manifest.sha256).toBe(sha256);
  const answers: Json[][] = [];
  for (let q = 0; q < QUERIES.length; q++) {
    answers.push([]);
    for (let i = 0; i < IMAGES.length; i++) {
      const res = await reference.app.request(`/v1/classify${QUERIES[q]}`, { method: 'POST', body: image(IMAGES[i]!), headers: { 'content-type': 'image/png' } });
      expect(res.status).toBe(200);
      answers[q]!.push(withoutTiming(await res.json()));
    }
  }
  sets.push({ sha256, answers });
}

/** When each server was seen serving each set (performance.now()). */
const seenAt = new Map<string, number[]>();
const published: number[] = [];

/** Wait until every server's /v1/models names the latest set's manifest; then its next request for `query` must be answered by `model`. */
async function everyServerServes(query: number, model: string): Promise<void> {
  const k = sets.length - 1;
  const deadline = performance.now() + 30_000;
  await Promise.all(
    servers.map(async ({ target, server }) => {
      for (;;) {
        const body = (await (await fetch(`${server.url}/v1/models`)).json()) as Json;
        if (body.manifest.sha256 === sets[k]!.sha256) break;
        if (server.child.exitCode !== null || performance.now() > deadline) throw new Error(`${target.name} does not serve manifest ${sets[k]!.sha256}:\n${server.log()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      seenAt.get(target.name)![k] = performance.now();
      const next = (await (await post(server.url, query, 0)).json()) as Json;
      expect(next.model.id, `${target.name}: the next request for ${QUERIES[query]}`).toBe(model);
    }),
  );
}

beforeAll(async () => {
  cpSync(FIXTURE_MODELS, dir, { recursive: true });
  reference = await createApp({ store: new FsModelStore(dir), wasm: await fixtureWasm(), reloadLog: { info: () => {}, error: () => {} } });
  await recordSet();
  for (const t of TARGETS) if (t.skip) console.warn(`SKIPPING ${t.name}: ${t.skip}`);
  const running = TARGETS.filter((t) => !t.skip);
  // `ready`: every model's session is made before the first publish.
  const started = await Promise.all(running.map((t) => startServer(t.runtime, dir, { ready: true, env: t.env })));
  running.forEach((target, i) => {
    servers.push({ target, server: started[i]!, answers: [] });
    seenAt.set(target.name, [0]);
  });
  // Steady requests: two at a time per server, round the queries and images, until the end.
  let n = 0;
  load = Promise.all(
    servers.flatMap(({ server, answers }) =>
      [0, 1].map(async () => {
        while (loading) {
          const i = n++;
          const [query, img] = [i % QUERIES.length, Math.floor(i / QUERIES.length) % IMAGES.length];
          const started = performance.now();
          // A failure is recorded, not thrown: the check below says which request, and how.
          const [status, text] = await post(server.url, query, img).then(
            async (res) => [res.status, await res.text()] as const,
            (err: Error) => [0, `${err.message}: ${(err.cause as Error)?.message}`] as const,
          );
          let body: Json = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON: kept as text
          }
          answers.push({ query, image: img, started, ended: performance.now(), status, body });
        }
      }),
    ),
  ).then(() => undefined);
}, 180_000);

afterAll(async () => {
  loading = false;
  await load?.catch(() => undefined);
  await Promise.all(servers.map(({ server }) => server.stop()));
  rmSync(dir, { recursive: true, force: true });
});

/** Wait until every server has answered `n` requests that it started once it was seen serving the latest set: each set is served under load. */
async function answersOnLatestSet(n: number): Promise<void> {
  const k = sets.length - 1;
  const deadline = performance.now() + 30_000;
  for (const { target, answers } of servers) {
    while (answers.filter((a) => a.started >= seenAt.get(target.name)![k]!).length < n) {
      if (performance.now() > deadline) throw new Error(`${target.name} answered fewer than ${n} requests on set ${k} in 30 s`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

const logCount = (s: RunningServer, text: string) => s.log().split(text).length - 1;
const waitForLog = async (text: string, count: number) => {
  const deadline = performance.now() + 30_000;
  for (const { target, server } of servers) {
    while (logCount(server, text) < count) {
      if (server.child.exitCode !== null || performance.now() > deadline) throw new Error(`${target.name} did not log "${text}" ${count} times:\n${server.log()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
};

describe('hot reload under steady requests', () => {
  it('a subtask added by a publish answers the next request for its classes; one removed by facet subtasks remove stops answering; no answer fails or is torn', async () => {
    await answersOnLatestSet(10);
    const before = (await readManifest(dir))!;
    published.push(performance.now());
    await commitModels(dir, [BOTTOMS], ([bottoms]) => ({ ...before, createdAt: new Date().toISOString(), models: [...before.models, bottoms!] }));
    await recordSet();
    await everyServerServes(0, 'bottoms');
    await answersOnLatestSet(10);

    published.push(performance.now());
    const cli = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'compiler/cli/main.ts', 'subtasks', 'remove', 'shoes', '--models', dir], { encoding: 'utf8' });
    expect(cli.stdout).toContain(`removed subtask shoes (shoes.onnx) from ${dir}`);
    await recordSet();
    await everyServerServes(1, 'full');
    await answersOnLatestSet(10);
    for (const { target, server } of servers) {
      expect(server.child.exitCode, target.name).toBeNull();
      expect(logCount(server, 'facet edge: now serving manifest '), target.name).toBe(2);
      expect(server.log(), target.name).toContain(`now serving manifest ${sets[2]!.sha256} from ${dir} (−shoes, full, tops, bottoms kept)`);
    }
  });

  it('a corrupt manifest, and one naming a file whose sha256 does not match, are refused with a log line; the old set keeps serving', async () => {
    const good = readFileSync(join(dir, 'manifest.json'), 'utf8');
    await writeFileAtomic(join(dir, 'manifest.json'), good.slice(0, good.length / 2));
    await waitForLog('facet edge: reload refused', 1);
    const mismatch = JSON.parse(good);
    const bottoms = mismatch.models.find((m: Json) => m.id === 'bottoms');
    bottoms.sha256 = bottoms.sha256.replace(/^./, (c: string) => (c === '0' ? '1' : '0'));
    await writeFileAtomic(join(dir, 'manifest.json'), JSON.stringify(mismatch, null, 1));
    await waitForLog('facet edge: reload refused', 2);
    for (const { target, server } of servers) {
      const refusals = server.log().split('\n').filter((l) => l.includes('reload refused'));
      expect(refusals[0], target.name).toMatch(new RegExp(`^facet edge: reload refused, still serving manifest ${sets[2]!.sha256}: manifest [0-9a-f]{64}: ${dir}/manifest.json is not JSON`));
      expect(refusals[1], target.name).toMatch(new RegExp(`still serving manifest ${sets[2]!.sha256}: manifest [0-9a-f]{64}: model "bottoms": ${dir}/${bottoms.file} has sha256 [0-9a-f]{64}; the manifest says ${bottoms.sha256}`));
      const models = (await (await fetch(`${server.url}/v1/models`)).json()) as Json;
      expect(models.manifest.sha256, target.name).toBe(sets[2]!.sha256);
    }
    // Put back as it was: the same manifest, nothing to switch.
    await writeFileAtomic(join(dir, 'manifest.json'), good);
    await new Promise((r) => setTimeout(r, 300));

    loading = false;
    await load;
    for (const { target, answers } of servers) {
      const phases = sets.map((_, k) => answers.filter((a) => a.started >= seenAt.get(target.name)![k]! && a.ended <= (published[k] ?? Infinity)).length);
      console.log(`hot reload, ${target.name}: ${answers.length} answers, ${phases.join(' / ')} while each of the ${sets.length} sets was served`);
    }
    for (const { target, server, answers } of servers) {
      expect(logCount(server, 'facet edge: now serving manifest '), target.name).toBe(2);
      expect(logCount(server, 'facet edge: reload refused'), target.name).toBe(2);
      // Every set answered requests from start to end (answersOnLatestSet waited for them; no rate is asserted).
      for (let k = 0; k < sets.length; k++) {
        const from = seenAt.get(target.name)![k]!;
        const to = published[k] ?? Infinity;
        expect(answers.filter((a) => a.started >= from && a.ended <= to).length, `${target.name}: answers while set ${k} was served`).toBeGreaterThanOrEqual(10);
      }
      for (const a of answers) {
        const what = `${target.name}: ${QUERIES[a.query]} ${IMAGES[a.image]} → ${a.status} ${JSON.stringify(a.body).slice(0, 300)}`;
        const from = setsOf(a);
        expect(from.length, `a whole answer of some set: ${what}`).toBeGreaterThan(0);
        // Started once set k was seen served: answered by it or a later one.
        const seen = seenAt.get(target.name)!.filter((t) => t <= a.started).length - 1;
        expect(Math.max(...from), `answered by an older set than the one served when it started: ${what}`).toBeGreaterThanOrEqual(seen);
        // Over before set k was published: answered by set k or an earlier one.
        const before = published.filter((t) => t < a.ended).length;
        expect(Math.min(...from), `answered by a set published after it ended: ${what}`).toBeLessThanOrEqual(before);
      }
    }
  });
});
