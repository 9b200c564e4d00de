/**
 * The compile report: `report.json` (the data) and a self-contained `report.html` (the
 * published table's rows for this run, accuracy-against-level charts as inline SVG, and
 * the wall time of every stage). No scripts, styles or fonts from elsewhere.
 */
import { DEGRADATION_KINDS, type DegradationKind } from '../../shared/manifest.ts';
import type { EvalPoint, EvalResult } from './evaluate.ts';

export const REPORT_SCHEMA = 'facet.fusiondistill-report/1';

/** One cell set of the table; accuracies in [0, 1], null where the row has no such cell (Oracle's clean). */
export interface RowSummary {
  clean: number | null;
  jpeg: number | null;
  blur: number | null;
  awgn: number | null;
  saltpepper: number | null;
  /** Mean of the four degradation cells. */
  degradedMean: number | null;
}

export interface ReportRow {
  /** Stable id: base, oracle, vanilla, soup-copy, soup-recal, fusing, fusiondistill. */
  id: string;
  label: string;
  summary: RowSummary;
  /** Accuracy per evaluated level (the chart's lines). */
  points: EvalPoint[];
}

export interface StageTiming {
  stage: string;
  hash: string;
  /** Wall time of the run that produced it (ms). */
  wallMs: number;
  /** True when this compile found the stage cached. */
  cached: boolean;
  /** Training stages: share of step wall time spent preparing data (augmentation, degradations). */
  dataShare?: number;
}

export interface Report {
  schema: typeof REPORT_SCHEMA;
  config: string;
  dataset: string;
  createdAt: string;
  quick: boolean;
  /** Test images per evaluation pass. */
  samples: number;
  rows: ReportRow[];
  stages: StageTiming[];
  /** Wall time of this compile run (ms). */
  wallMs: number;
  /** Figures to compare with (e.g. the reference PyTorch run of issue 3), in % as printed. */
  reference?: { title: string; rows: { label: string; cells: (number | null)[] }[] };
  notes: string[];
}

export const KIND_TITLES: Record<DegradationKind, string> = { jpeg: 'JPEG (quality)', blur: 'Gaussian blur (σ×10)', awgn: 'AWGN (σ)', saltpepper: 'Salt & pepper (p×100)' };
const COLUMN_TITLES = ['Clean', 'JPEG', 'Blur', 'AWGN', 'S&P', 'Avg'];
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** The issue-3 reference: an independent PyTorch run of configs/reference-fashion-mnist.json (%, mean over levels). */
export const REFERENCE_FASHION_MNIST: NonNullable<Report['reference']> = {
  title: 'Reference: independent PyTorch run of the reference configuration (issue 3)',
  rows: [
    { label: 'Base', cells: [93.8, 87.5, 36.8, 45.4, 41.2, 52.7] },
    { label: 'Oracle', cells: [null, 91.9, 87.9, 91.0, 91.9, 90.7] },
    { label: 'ModelSoups, BN copied', cells: [92.7, 90.9, 49.4, 83.6, 67.1, 72.8] },
    { label: 'ModelSoups, BN recalibrated', cells: [90.9, 89.5, 52.1, 85.3, 76.1, 75.8] },
    { label: 'FusionDistill', cells: [92.5, 91.2, 87.0, 90.6, 90.6, 89.9] },
    { label: 'Fusing', cells: [93.1, 91.8, 87.1, 90.9, 90.6, 90.1] },
    { label: 'Vanilla fine-tune', cells: [92.9, 91.5, 86.3, 90.6, 90.0, 89.6] },
  ],
};

/** A row from one model's evaluation. */
export function modelRow(id: string, label: string, result: EvalResult): ReportRow {
  const { clean, jpeg, blur, awgn, saltpepper, degradedMean } = result.summary;
  return { id, label, summary: { clean, jpeg, blur, awgn, saltpepper, degradedMean }, points: result.points };
}

/** The Oracle row: each degradation's cell (and curve) from the stage-2 model trained for it. */
export function oracleRow(results: Record<DegradationKind, EvalResult>): ReportRow {
  const cell = (k: DegradationKind) => {
    const v = results[k].summary[k];
    if (v === null) throw new Error(`oracleRow: the ${k} model was not evaluated on ${k}`);
    return v;
  };
  return {
    id: 'oracle',
    label: 'Oracle',
    summary: { clean: null, jpeg: cell('jpeg'), blur: cell('blur'), awgn: cell('awgn'), saltpepper: cell('saltpepper'), degradedMean: DEGRADATION_KINDS.reduce((s, k) => s + cell(k), 0) / DEGRADATION_KINDS.length },
    points: DEGRADATION_KINDS.flatMap((k) => results[k].points.filter((p) => p.kind === k)),
  };
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

const pct = (v: number | null): string => (v === null ? '—' : (100 * v).toFixed(1));
const cells = (s: RowSummary): (number | null)[] => [s.clean, s.jpeg, s.blur, s.awgn, s.saltpepper, s.degradedMean];

export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s - 60 * m)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The table as GitHub markdown (for the README and closing notes). */
export function reportTableMarkdown(report: Report): string {
  const lines = [`| Row | ${COLUMN_TITLES.join(' | ')} |`, `|---|${COLUMN_TITLES.map(() => '---').join('|')}|`];
  for (const row of report.rows) lines.push(`| ${row.label} | ${cells(row.summary).map(pct).join(' | ')} |`);
  return lines.join('\n');
}

function chart(kind: DegradationKind, rows: ReportRow[]): string {
  const width = 420;
  const height = 260;
  const m = { left: 44, right: 12, top: 26, bottom: 36 };
  const series = rows
    .map((row, i) => ({ row, color: COLORS[i % COLORS.length]!, pts: row.points.filter((p) => p.kind === kind && p.level !== null) }))
    .filter((s) => s.pts.length > 0);
  const levels = series.flatMap((s) => s.pts.map((p) => p.level!));
  if (levels.length === 0) return '';
  const lo = Math.min(...levels);
  const hi = Math.max(...levels);
  const x = (l: number) => m.left + ((l - lo) / (hi - lo || 1)) * (width - m.left - m.right);
  const y = (a: number) => m.top + (1 - a) * (height - m.top - m.bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(KIND_TITLES[kind])}">`,
    `<text x="${width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${escapeHtml(KIND_TITLES[kind])}</text>`,
  ];
  for (const a of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${y(a)}" y2="${y(a)}" stroke="#ddd"/>`);
    parts.push(`<text x="${m.left - 4}" y="${y(a) + 4}" text-anchor="end" font-size="10">${100 * a}%</text>`);
  }
  for (const l of [...new Set([lo, Math.round((lo + hi) / 2), hi])]) {
    parts.push(`<text x="${x(l)}" y="${height - m.bottom + 14}" text-anchor="middle" font-size="10">${l}</text>`);
  }
  parts.push(`<text x="${(m.left + width - m.right) / 2}" y="${height - 6}" text-anchor="middle" font-size="11">level</text>`);
  for (const s of series) {
    const d = s.pts.map((p) => `${x(p.level!).toFixed(1)},${y(p.accuracy).toFixed(1)}`).join(' ');
    parts.push(`<polyline data-row="${escapeHtml(s.row.id)}" fill="none" stroke="${s.color}" stroke-width="1.8" points="${d}"><title>${escapeHtml(s.row.label)}</title></polyline>`);
  }
  parts.push('</svg>');
  return parts.join('\n');
}

function legend(rows: ReportRow[]): string {
  return `<p class="legend">${rows
    .map((r, i) => `<span><svg width="18" height="8"><line x1="0" x2="18" y1="4" y2="4" stroke="${COLORS[i % COLORS.length]}" stroke-width="3"/></svg> ${escapeHtml(r.label)}</span>`)
    .join(' ')}</p>`;
}

export function renderReportHtml(report: Report): string {
  const table = [
    '<table id="results"><thead><tr><th>Row</th>' + COLUMN_TITLES.map((t) => `<th>${escapeHtml(t)}</th>`).join('') + '</tr></thead><tbody>',
    ...report.rows.map((r) => `<tr data-row="${escapeHtml(r.id)}"><th>${escapeHtml(r.label)}</th>${cells(r.summary).map((v) => `<td>${pct(v)}</td>`).join('')}</tr>`),
    '</tbody></table>',
  ].join('\n');
  const reference = report.reference
    ? [
        `<h2>${escapeHtml(report.reference.title)}</h2>`,
        '<table id="reference"><thead><tr><th>Row</th>' + COLUMN_TITLES.map((t) => `<th>${escapeHtml(t)}</th>`).join('') + '</tr></thead><tbody>',
        ...report.reference.rows.map((r) => `<tr><th>${escapeHtml(r.label)}</th>${r.cells.map((v) => `<td>${v === null ? '—' : v.toFixed(1)}</td>`).join('')}</tr>`),
        '</tbody></table>',
      ].join('\n')
    : '';
  const stages = [
    '<table id="stages"><thead><tr><th>Stage</th><th>Wall time</th><th>Data prep share</th><th>This run</th><th>Cache key</th></tr></thead><tbody>',
    ...report.stages.map((s) => `<tr><th>${escapeHtml(s.stage)}</th><td>${formatDuration(s.wallMs)}</td><td>${s.dataShare === undefined ? '' : `${(100 * s.dataShare).toFixed(1)}%`}</td><td>${s.cached ? 'cached' : 'ran'}</td><td><code>${escapeHtml(s.hash)}</code></td></tr>`),
    `<tr><th>all stages</th><td>${formatDuration(report.stages.reduce((sum, s) => sum + s.wallMs, 0))}</td><td></td><td></td><td></td></tr>`,
    '</tbody></table>',
  ].join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Facet compile report: ${escapeHtml(report.config)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.legend span { margin-right: 1.2em; white-space: nowrap; }
</style>
</head>
<body>
<h1>Facet compile report: ${escapeHtml(report.config)}</h1>
<p>Data set ${escapeHtml(report.dataset)}; ${report.samples} test images per pass${report.quick ? '; <strong>quick mode</strong> (sampled levels and test images)' : ''}. Top-1 accuracy in %, mean over the evaluated levels of each degradation; Avg is the mean of the four. Created ${escapeHtml(report.createdAt)}; compile wall time ${formatDuration(report.wallMs)}.</p>
${table}
${reference}
<h2>Accuracy against level</h2>
${legend(report.rows)}
<div class="charts">
${DEGRADATION_KINDS.map((k) => chart(k, report.rows)).join('\n')}
</div>
<h2>Stages</h2>
${stages}
${report.notes.length ? `<h2>Notes</h2>\n<ul>${report.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : ''}
</body>
</html>
`;
}
