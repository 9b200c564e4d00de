/**
 * A compile's report beside its reference figures (for Fashion-MNIST, the independent
 * PyTorch run of configs/reference-fashion-mnist.json), cell by cell, with the gaps over a
 * tolerance in bold: what `facet compile` prints at its end, for a report already written.
 *
 *   npm run bench:reference-compare -- runs/reference/report.json [--tolerance 1.0]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { formatDuration, referenceComparisonMarkdown, type Report } from '../compiler/pipeline/report.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { tolerance: { type: 'string', default: '1.0' } } });
const file = positionals[0];
if (!file) {
  console.error('usage: npm run bench:reference-compare -- REPORT.json [--tolerance 1.0]');
  process.exit(2);
}
let report: Report;
try {
  report = JSON.parse(await readFile(file, 'utf8')) as Report;
} catch (err) {
  console.error(`bench:reference-compare: cannot read ${file}: ${(err as Error).message}`);
  process.exit(1);
}
if (!report.reference) {
  console.error(`bench:reference-compare: ${file} has no reference figures (only Fashion-MNIST compiles carry them)`);
  process.exit(1);
}
console.log(referenceComparisonMarkdown(report, Number(values.tolerance)));
console.log(`\nStages (wall time of the run that produced each):`);
for (const s of report.stages) console.log(`- ${s.stage}: ${formatDuration(s.wallMs)}${s.runs ? ` over ${s.runs} runs (resumed)` : ''}${s.cached ? ' (cached in this run)' : ''}`);
