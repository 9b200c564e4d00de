/**
 * Load run (issue 6): a bounded number of requests at concurrency 32 against the Node server
 * and wrangler dev on loopback, mixing good and bad requests. Checks zero 5xx and zero dropped
 * connections, and that resident memory after the run stays within 10% of the memory after the
 * first 1,000 requests. Prints p50/p99 and the memory figures; writes bench/results/load.json.
 *
 *   npm run bench:load [-- --requests 50000] [--runtimes node,workerd] [--models DIR]
 */
import autocannon from 'autocannon';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { DEFAULT_MODELS } from '../edge/node.ts';
import { pngHeaderClaiming } from '../test/edge/helpers.ts';
import { rssBytes, servingPid, startServer, type RuntimeName } from '../test/edge/servers.ts';

const argv = process.argv.slice(2);
const arg = (name: string) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : undefined);
const total = Number(arg('requests') ?? 50_000);
const runtimes = (arg('runtimes') ?? 'node,workerd').split(',') as RuntimeName[];
const modelsDir = arg('models') ?? DEFAULT_MODELS.find((d) => existsSync(`${d}/manifest.json`))!;
const WARMUP = 1000;
const CONNECTIONS = 32;
const img = (n: string) => readFileSync(`test/fixtures/edge/images/${n}`);

/** Good and bad requests, cycled by every connection. Expected statuses in the comments. */
const REQUESTS: autocannon.Request[] = [
  { method: 'POST', path: '/v1/classify?subtask=shoes', headers: { 'content-type': 'image/png' }, body: img('sneaker.png') }, // 200
  { method: 'POST', path: '/v1/classify?classes=Shirt,Coat', headers: { 'content-type': 'image/png' }, body: img('shirt.png') }, // 200
  { method: 'POST', path: '/v1/classify', headers: { 'content-type': 'image/jpeg' }, body: img('sneaker.jpg') }, // 200
  { method: 'POST', path: '/v1/classify', headers: { 'content-type': 'image/png' }, body: 'this is text, not a PNG' }, // 400
  { method: 'POST', path: '/v1/classify?classes=Hat', headers: { 'content-type': 'image/png' }, body: img('shirt.png') }, // 400
  { method: 'POST', path: '/v1/classify?top_k=0', headers: { 'content-type': 'image/png' }, body: img('shirt.png') }, // 422
  { method: 'POST', path: '/v1/classify', headers: { 'content-type': 'image/png' }, body: Buffer.from(pngHeaderClaiming(50_000, 50_000)) }, // 422
  { method: 'POST', path: '/v1/classify', headers: { 'content-type': 'text/plain' }, body: 'x' }, // 415
  { method: 'POST', path: '/v1/classify', headers: { 'content-type': 'application/json' }, body: '{"image": "@@@"}' }, // 400
  { method: 'GET', path: '/v1/models' }, // 200
];

async function fire(url: string, amount: number) {
  const statuses = new Map<number, number>();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({ url, connections: CONNECTIONS, amount, requests: REQUESTS, timeout: 30 }, (err, res) => (err ? reject(err) : resolve(res)));
    instance.on('response', (_client, status) => statuses.set(status, (statuses.get(status) ?? 0) + 1));
  });
  return { result, statuses };
}

async function loadRun(runtime: RuntimeName) {
  const server = await startServer(runtime, modelsDir, { ready: true });
  try {
    const pid = servingPid(server);
    const warm = await fire(server.url, WARMUP);
    const rssAfterWarmup = rssBytes(pid);
    // Two halves, so a runtime whose heap is still settling after 1,000 requests (workerd's is)
    // can be told apart from one that keeps growing.
    const firstHalf = await fire(server.url, Math.floor((total - WARMUP) / 2));
    const rssMidRun = rssBytes(pid);
    const secondHalf = await fire(server.url, total - WARMUP - Math.floor((total - WARMUP) / 2));
    const rssAfterRun = rssBytes(pid);
    const main = { result: { ...secondHalf.result, errors: firstHalf.result.errors + secondHalf.result.errors, timeouts: firstHalf.result.timeouts + secondHalf.result.timeouts } };
    const statuses: Record<string, number> = {};
    for (const s of [warm.statuses, firstHalf.statuses, secondHalf.statuses]) for (const [k, v] of s) statuses[k] = (statuses[k] ?? 0) + v;
    const fiveXX = Object.entries(statuses).filter(([k]) => Number(k) >= 500).reduce((s, [, v]) => s + v, 0);
    const dropped = warm.result.errors + warm.result.timeouts + main.result.errors + main.result.timeouts;
    const alive = (await fetch(`${server.url}/healthz`)).ok;
    return {
      runtime,
      requests: total,
      connections: CONNECTIONS,
      // Latency and throughput of the second half (steady state).
      requestsPerSec: +secondHalf.result.requests.average.toFixed(1),
      p50Ms: secondHalf.result.latency.p50,
      p99Ms: secondHalf.result.latency.p99,
      statuses,
      fiveXX,
      droppedConnections: dropped,
      rssAfterWarmupBytes: rssAfterWarmup,
      rssMidRunBytes: rssMidRun,
      rssAfterRunBytes: rssAfterRun,
      rssGrowth: +(rssAfterRun / rssAfterWarmup - 1).toFixed(4),
      rssGrowthSecondHalf: +(rssAfterRun / rssMidRun - 1).toFixed(4),
      aliveAfter: alive,
      pass: fiveXX === 0 && dropped === 0 && rssAfterRun <= rssAfterWarmup * 1.1 && alive,
    };
  } finally {
    await server.stop();
  }
}

const started = new Date().toISOString();
const load0 = loadavg()[0]!;
console.log(`bench:load: ${total} requests at concurrency ${CONNECTIONS} on ${runtimes.join(', ')}; ${cpus().length} CPUs, load average ${load0.toFixed(1)}`);
const rows = [];
for (const r of runtimes) {
  const row = await loadRun(r);
  rows.push(row);
  console.log(
    `${r}: ${row.requestsPerSec} req/s, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, statuses ${JSON.stringify(row.statuses)}, 5xx ${row.fiveXX}, dropped ${row.droppedConnections}, ` +
      `RSS after ${WARMUP} ${(row.rssAfterWarmupBytes / 2 ** 20).toFixed(1)} MiB → mid-run ${(row.rssMidRunBytes / 2 ** 20).toFixed(1)} → end ${(row.rssAfterRunBytes / 2 ** 20).toFixed(1)} MiB ` +
        `(${(row.rssGrowth * 100).toFixed(1)}% overall, ${(row.rssGrowthSecondHalf * 100).toFixed(1)}% in the second half) ${row.pass ? 'PASS' : 'FAIL'}`,
  );
}
const results = { benchmark: 'load', started, finished: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadAverageAtStart: load0 }, modelsDir, runs: rows };
mkdirSync('bench/results', { recursive: true });
const path = 'bench/results/load.json';
const fd = openSync(`${path}.tmp`, 'w');
writeSync(fd, JSON.stringify(results, null, 2) + '\n');
fsyncSync(fd);
closeSync(fd);
renameSync(`${path}.tmp`, path);
console.log(`wrote ${path}`);
process.exit(rows.every((r) => r.pass) ? 0 : 1);
