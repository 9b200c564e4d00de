/**
 * Investigation tool for the wrangler dev memory growth (issue 6): serve a Worker (ours, or a
 * trivial one) under wrangler dev or under workerd directly, fire the load run's requests, and
 * sample the resident memory of every process in the tree after each slice.
 *
 *   tsx bench/load-probe.ts [--worker facet|trivial] [--host wrangler|workerd] [--requests 20000]
 *                           [--slice 2500] [--models DIR] [--wrangler-args "..."] [--v8-flags "..."]
 *                           [--only 0,9]   (send only these of the load run's requests, by index)
 *   PROBE_GC=1     force a full GC in the Worker's isolate at the end (inspector) and read its heap
 *   PROBE_SMAPS=1  print each workerd's resident memory by kind of mapping after the first slice
 *                  and at the end (PROBE_SMAPS=2: every mapping over 64 MiB on its own)
 *
 * Findings (2026-11-26, shared 2-core machine; bench/results/load.json has the load run itself):
 * - Under wrangler dev both workerd processes grow (the proxy and the runtime that runs the
 *   Worker); wrangler's Node processes do not. The runtime grows about as much with the trivial
 *   Worker as with ours over 49k requests, and `workerd serve` alone grows with either.
 * - The Worker isolate's V8 heap after a forced GC stays flat (ours 5.8 → 6.7 MiB, trivial
 *   0.2 MiB); the forced GC returns only ~10% of workerd's RSS. The rest is native memory workerd
 *   keeps (its allocator is a statically linked tcmalloc). With V8's heap capped
 *   (--v8-flags "--max-old-space-size=16 --max-semi-space-size=1") the trivial Worker's workerd
 *   levels off at ~83 MiB within 10k requests: the growth follows V8's GC timing.
 * - Over 200k requests the growth slows after ~75k but does not stop cleanly: runtime workerd
 *   under wrangler dev, ours 192 → 909 (75k) → 943 MiB (200k), trivial 72 → 558 → 735 MiB;
 *   under workerd serve, ours 173 → 460 (75k) → 469 MiB (200k).
 * - It is not one kind of request: under workerd serve, 30k requests of one kind each grew
 *   workerd by 126 MiB (PNG classify, --only 0), 135 (JPEG, --only 2), 66 (415 with the body
 *   drained, --only 7), 101 (bad PNG 400, --only 3) and 154 MiB (GET /v1/models, --only 9: no
 *   body, no decoding, no inference, a 2.5 KB JSON answer).
 * - wrangler's --log-level none, --show-interactive-dev-session=false and --live-reload=false
 *   change nothing (runtime 168 → 377 MiB over 20k requests vs 168 → 383 MiB without them);
 *   workerd serve without an inspector grows too, so wrangler's inspector is not the cause.
 *
 * Second round (2026-11-26, later; `workerd serve`, --v8-flags as workerd's config v8Flags):
 * - V8 flags level the trivial Worker, not ours. With "--max-semi-space-size=1
 *   --optimize-for-size --heap-growing-percent=10" the trivial Worker's workerd goes 66 → 70 MiB
 *   from 3k to 15k requests (without: 70 → 104). Ours still grows with them, and with
 *   --max-old-space-size=16 or 32 too: 199 → 251 / 201 → 260 MiB over 3k → 15k of
 *   GET /v1/models alone. The growth is in one mapping that keeps extending (the allocator's
 *   region: 0.12 → 0.21 GiB, 104 → 190 MiB resident, PROBE_SMAPS=2), not in V8's pages.
 * - Part of the difference is edge/app.ts's `WeakSet<Response>` (responses that already carry
 *   the secure headers). A Worker of a few lines answering with `new Response(…)` grew 65 → 110
 *   MiB over 20k requests; the same adding each Response to a WeakSet, 85 → 176 MiB. In our
 *   Worker, /healthz (answered through it) grew 194 → 278 MiB, a 404 (not through it) 195 → 210;
 *   with the WeakSet replaced by a header check in a scratch copy of the tree, /healthz went
 *   193 → 212 MiB (with the flags: 190 → 199).
 * - But over the whole load run (bench/load.ts --runtimes workerd-serve --workerd-v8-flags …)
 *   that copy still grew +12%, +50%, +75% and +46% in four runs, against +112%, +133% and +58%
 *   with the WeakSet: lower, not levelled, and noisy (the runs differ in req/s with the
 *   machine's load). Tagging each Response with a symbol property instead was worse (+192%),
 *   and a strong Set emptied by the middleware +99% (one run each).
 * - What is left, per kind of request (that copy, the flags above, 3k → 15k requests of one
 *   kind, --only): PNG classify 193 → 244 MiB and still climbing ~15 MiB per 3k; 415 with the
 *   body drained 189 → 209; GET /v1/models 188 → 201, ~3 MiB per 3k; bad PNG (400) 191 → 196,
 *   flat. So the inference path holds the most, though the same requests leave the Node
 *   server flat (its ORT wasm heap included), and our isolate's V8 heap stays flat.
 *
 * Third round (stop 5): edge/app.ts now remembers its pre-secured JSON answers on the request's
 * context instead of in a WeakSet, which keeps the Node server's fast path and drops the
 * WeakSet. GET /v1/models alone under `workerd serve` with the flags above, 12k → 60k
 * requests: 213 → 402 MiB with the WeakSet, 198 → 265 with the context (the trivial Worker,
 * 6k → 30k: 62 → 64). The same handler answering a constant 2.5 KB JSON levels off
 * (199 → 205 MiB from 12k to 30k); the same constant answer after building and dropping
 * ~20 copies of the manifest's model list in JS (garbage, nothing kept) grows again like the
 * real handler (198 → 235 MiB, 12k → 36k). So what is left follows how much JS garbage a
 * request makes, not anything our code keeps: workerd's native memory grows with its GC work. The whole
 * load mix under wrangler dev (no flags), runtime workerd after 1k → 50k requests, one run
 * each: 219 → 724 MiB with the WeakSet, 217 → 637 with the context; wrangler's proxy workerd
 * 108 → 410 in both.
 *
 * Fourth round (stop 6): a newer workerd does not help. wrangler 4.85 is the newest that runs
 * on Node 20, but miniflare starts whatever binary MINIFLARE_WORKERD_PATH names, so the newest
 * workerd on npm (1.20261117.1, with wrangler 4.164) can run under it. The trivial Worker under
 * wrangler dev, 20k requests (--worker trivial --host wrangler --requests 20000 --slice 5000),
 * runtime workerd at 0 → 5k → 20k requests: pinned workerd 2026-04-24 71 → 182 → 289 MiB
 * (proxy 58 → 282); workerd 2026-11-17 94 → 252 → 713 MiB (proxy 73 → 414). Its allocator is
 * Google's tcmalloc (huge-page aware), which hands freed pages back to the system only from a
 * background thread or on request, so the resident size keeps the high-water mark of native
 * memory that waits for V8's next GC. The allocator's environment switches found in the binary
 * change nothing (TCMALLOC_HPAA_CONTROL=0: runtime 77 → 263 MiB over 20k; BORG_EXPERIMENTS=
 * TCMALLOC_HUGE_CACHE_RELEASE_30S: 71 → 275), and the proxy workerd, which runs only
 * wrangler's own code, grows as much (58 → 282).
 */
import { existsSync, readFileSync } from 'node:fs';
import { DEFAULT_MODELS } from '../edge/node.ts';
import { collectGarbage, fire, loadRequests, startWorker, type WorkerKind, type WorkerHost } from './load-workerd.ts';
import { optionValue } from './args.ts';

const argv = process.argv.slice(2);
const arg = (name: string) => optionValue(argv, name);
const worker = (arg('worker') ?? 'facet') as WorkerKind;
const host = (arg('host') ?? 'wrangler') as WorkerHost;
const total = Number(arg('requests') ?? 20_000);
const slice = Number(arg('slice') ?? 2500);
const extra = arg('wrangler-args')?.split(' ').filter(Boolean) ?? [];
const modelsDir = arg('models') ?? DEFAULT_MODELS.find((d) => existsSync(`${d}/manifest.json`))!;

/** Resident MiB by kind of mapping: the malloc heap, anonymous mmaps by size class, files. */
function smapsSummary(pid: number): Record<string, number> {
  const text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const sums: Record<string, number> = {};
  let key = '';
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const size = (parseInt(head[2]!, 16) - parseInt(head[1]!, 16)) / 1024;
      const name = head[3]!;
      key = name ? (name.startsWith('/') ? 'file' : name) : size <= 256 ? 'anon<=256K' : size <= 2048 ? 'anon<=2M' : size <= 65536 ? 'anon<=64M' : 'anon>64M';
      // PROBE_SMAPS=2: each mapping over 64 MiB on its own (V8's pointer cage, wasm memories, the allocator's arenas).
      if (key === 'anon>64M' && process.env.PROBE_SMAPS === '2') key = `anon ${(size / 2 ** 20).toFixed(2)} GiB @${head[1]}`;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) sums[key] = +((sums[key] ?? 0) + Number(rss[1]) / 1024).toFixed(1);
  }
  return sums;
}

const server = await startWorker({ worker, host, modelsDir, extraArgs: extra, v8Flags: arg('v8-flags')?.split(' ').filter(Boolean) });
try {
  const every = loadRequests(JSON.parse(readFileSync(`${modelsDir}/manifest.json`, 'utf8')));
  const only = arg('only')?.split(',').map(Number);
  const requests = only ? only.map((i) => every[i]!) : every;
  const MiB = 2 ** 20;
  const show = (done: number) => {
    const tree = server.tree();
    console.log(`${String(done).padStart(6)} req: ` + tree.map((p) => `${p.role === 'other' ? p.comm : p.role} ${p.pid} ${(p.rssBytes / MiB).toFixed(1)} MiB`).join(' | '));
  };
  show(0);
  for (let done = 0; done < total; done += slice) {
    const r = await fire(server.url, Math.min(slice, total - done), requests, 32);
    show(done + slice);
    if (process.env.PROBE_SMAPS && done === 0) for (const p of server.tree()) if (p.role !== 'wrangler' && p.role !== 'other') console.log(`  ${p.role} after the first slice`, JSON.stringify(smapsSummary(p.pid)));
    console.log(`  ${r.requestsPerSec.toFixed(0)} req/s, p99 ${r.result.latency.p99} ms, statuses ${JSON.stringify(Object.fromEntries(r.statuses))}, dropped ${r.dropped}`);
  }
  if (process.env.PROBE_GC) {
    const heaps = await collectGarbage(server.inspectorPort, server.url);
    console.log('after forced GC:', heaps.map((h) => `${h.target} heap ${(h.usedBytes / MiB).toFixed(1)}/${(h.totalBytes / MiB).toFixed(1)} MiB`).join(' | '));
    show(total);
  }
  if (process.env.PROBE_SMAPS) for (const p of server.tree()) if (p.role !== 'wrangler' && p.role !== 'other') console.log(p.role, JSON.stringify(smapsSummary(p.pid)));
} finally {
  await server.stop();
}
