/**
 * The Node half of bench:edge's HTTP figure (issue 5), repeatable and side by side: autocannon at
 * concurrency 8 posting a 28×28 PNG to /v1/classify on the smallest subtask model, against one or
 * more Node servers started in turn (A/B/A/B when given two), with the server's CPU per request.
 * Optionally writes a V8 CPU profile of each server (--cpu-prof DIR).
 *
 *   tsx bench/node-http.ts [--requests 5000] [--rounds 3] [--models DIR] [--cpu-prof DIR] [--out FILE]
 *                          [--server "node --import tsx edge/node.ts"] [--server "..."]
 */
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MODELS } from '../edge/node.ts';
import type { Manifest } from '../shared/manifest.ts';
import { cpuMs, freePort } from '../test/edge/servers.ts';
import { optionValue } from './args.ts';
import { machineNoise } from './stats.ts';
import { fixedRequests } from './fixed-requests.ts';

const argv = process.argv.slice(2);
const arg = (name: string) => optionValue(argv, name);
const all = (name: string) => argv.flatMap((a, i) => (a === `--${name}` ? [argv[i + 1]!] : []));
const requests = Number(arg('requests') ?? 5000);
const rounds = Number(arg('rounds') ?? 3);
const modelsDir = arg('models') ?? DEFAULT_MODELS.find((d) => existsSync(`${d}/manifest.json`))!;
const profileDir = arg('cpu-prof');
const servers = all('server').length ? all('server') : [`${process.execPath} --import tsx edge/node.ts`];
const manifest = JSON.parse(readFileSync(join(modelsDir, 'manifest.json'), 'utf8')) as Manifest;
const smallest = manifest.models.filter((m) => m.subtask).sort((a, b) => a.macs - b.macs)[0]!;
const body = readFileSync('test/fixtures/edge/images/shirt.png');

async function start(command: string) {
  const port = await freePort();
  const [cmd, ...args] = command.split(' ');
  const prof = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const child = spawn(cmd!, [...prof, ...args, '--port', String(port), '--models', modelsDir], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, FACET_API_KEY: '' } });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    if (ok) return { url, child };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`${command} did not get ready`);
}

async function measure(command: string) {
  const { url, child } = await start(command);
  try {
    const target = `${url}/v1/classify?subtask=${encodeURIComponent(smallest.subtask!)}`;
    // Warm up: JIT, codecs, the session (bench:edge sends one request first, then measures).
    await autocannon({ url: target, method: 'POST', body, headers: { 'content-type': 'image/png' }, connections: 8, amount: 500 });
    const cpuBefore = cpuMs(child.pid!);
    const { result: r, requestsPerSec } = await fixedRequests({ url: target, method: 'POST', body, headers: { 'content-type': 'image/png' }, connections: 8, amount: requests });
    const cpu = (cpuMs(child.pid!) - cpuBefore) / requests;
    return { rps: Math.round(requestsPerSec), p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, cpuMsPerRequest: +cpu.toFixed(3), non2xx: r.non2xx, errors: r.errors };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await exited;
  }
}

const noiseBefore = machineNoise();
console.log(`machine noise before: a fixed CPU task takes p50 ${noiseBefore.p50} ms, p99 ${noiseBefore.p99} ms, max ${noiseBefore.max} ms`);
console.log(`node-http: ${requests} requests, concurrency 8, 28×28 PNG, subtask ${smallest.subtask}; ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(1)} (shared machine)`);
const rows: Record<string, unknown>[] = [];
for (let round = 0; round < rounds; round++) {
  for (const [i, s] of servers.entries()) rows.push({ server: String.fromCharCode(65 + i), round, ...(await measure(s)) });
}
console.table(rows);
servers.forEach((s, i) => console.log(`${String.fromCharCode(65 + i)}: ${s}`));
const noiseAfter = machineNoise();
console.log(`machine noise after: a fixed CPU task takes p50 ${noiseAfter.p50} ms, p99 ${noiseAfter.p99} ms, max ${noiseAfter.max} ms`);
const out = arg('out');
if (out) {
  const serverCommands = Object.fromEntries(servers.map((s, i) => [String.fromCharCode(65 + i), s]));
  writeFileSync(out, JSON.stringify({ benchmark: 'node-http', finished: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, note: 'shared 2-core machine; autocannon runs on it too' }, modelsDir, subtask: smallest.subtask, connections: 8, requests, servers: serverCommands, machineNoise: { before: noiseBefore, after: noiseAfter }, rows }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}
