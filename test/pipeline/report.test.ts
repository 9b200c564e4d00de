import { describe, expect, it } from 'vitest';
import type { EvalPoint, EvalResult, EvalSummary } from '../../compiler/pipeline/evaluate.ts';
import { meanCleanAndDegraded } from '../../compiler/pipeline/accuracy.ts';
import { modelRow, oracleRow, REFERENCE_FASHION_MNIST, referenceComparisonMarkdown, renderReportHtml, reportTableMarkdown, REPORT_SCHEMA, type Report } from '../../compiler/pipeline/report.ts';
import type { SubtaskOutcome } from '../../compiler/pipeline/subtasks.ts';
import { DEGRADATION_KINDS, type DegradationKind } from '../../shared/manifest.ts';

/** A fake evaluation whose accuracy at level l of kind k is `base − slope·l` (clean = base). */
function result(base: number, slope: number): EvalResult {
  const points: EvalPoint[] = [{ kind: 'clean', level: null, correct: 0, samples: 100, accuracy: base }];
  const summary = { clean: base, jpeg: 0, blur: 0, awgn: 0, saltpepper: 0, degradedMean: 0, samples: 100 };
  for (const kind of DEGRADATION_KINDS) {
    const levels = kind === 'jpeg' ? [1, 51, 101] : [0, 10, 20];
    const accs = levels.map((l) => base - slope * (kind === 'jpeg' ? 101 - l : l));
    accs.forEach((a, i) => points.push({ kind, level: levels[i]!, correct: Math.round(a * 100), samples: 100, accuracy: a }));
    summary[kind] = accs.reduce((s, a) => s + a, 0) / accs.length;
  }
  summary.degradedMean = DEGRADATION_KINDS.reduce((s, k) => s + summary[k], 0) / 4;
  return { points, summary };
}

function report(): Report {
  const oracle = Object.fromEntries(DEGRADATION_KINDS.map((k, i) => [k, result(0.9 - 0.01 * i, 0.001)])) as Record<DegradationKind, EvalResult>;
  return {
    schema: REPORT_SCHEMA,
    config: 'fashion-mnist',
    dataset: 'fashion-mnist',
    createdAt: '2026-11-26T10:00:00Z',
    quick: false,
    samples: 100,
    rows: [
      modelRow('base', 'Base', result(0.938, 0.01)),
      oracleRow(oracle),
      modelRow('soup-copy', 'ModelSoups, BN copied <script>alert(1)</script>', result(0.927, 0.005)),
      modelRow('fusiondistill', 'FusionDistill', result(0.925, 0.0012)),
    ],
    stages: [
      { stage: 'base', hash: 'abc123', wallMs: 754_000, cached: false, dataShare: 0.123 },
      { stage: 'degrade-jpeg', hash: 'def456', wallMs: 12_300, cached: true },
      { stage: 'distill', hash: 'ghi789', wallMs: 60_000, runs: 3, cached: false },
    ],
    wallMs: 3_725_000,
    reference: REFERENCE_FASHION_MNIST,
    notes: ['Budget: placeholder & <b>not</b> tuned'],
  };
}

describe('report', () => {
  it('rows: model rows copy the summary; Oracle takes each cell from its own model', () => {
    const r = report();
    expect(r.rows[0]!.summary).toEqual({ clean: 0.938, jpeg: expect.closeTo(0.938 - 0.01 * 50, 9), blur: expect.closeTo(0.838, 9), awgn: expect.closeTo(0.838, 9), saltpepper: expect.closeTo(0.838, 9), degradedMean: expect.closeTo((0.438 + 3 * 0.838) / 4, 9) });
    const oracle = r.rows[1]!;
    // Cells: model k at slope 0.001: jpeg 0.9 − 0.05, blur 0.89 − 0.01, awgn 0.88 − 0.01, S&P 0.87 − 0.01.
    expect(oracle.summary.clean).toBeNull();
    expect(oracle.summary.jpeg).toBeCloseTo(0.85, 9);
    expect(oracle.summary.blur).toBeCloseTo(0.88, 9);
    expect(oracle.summary.saltpepper).toBeCloseTo(0.86, 9);
    expect(oracle.summary.degradedMean).toBeCloseTo((0.85 + 0.88 + 0.87 + 0.86) / 4, 9);
    expect(oracle.points.map((p) => p.kind)).toEqual(DEGRADATION_KINDS.flatMap((k) => [k, k, k]));
  });

  it('renders the table from a report object', () => {
    const html = renderReportHtml(report());
    const table = html.slice(html.indexOf('<table id="results">'), html.indexOf('</table>'));
    const rows = [...table.matchAll(/<tr data-row="([^"]+)"><th>(.*?)<\/th>(.*?)<\/tr>/g)];
    expect(rows.map((m) => m[1])).toEqual(['base', 'oracle', 'soup-copy', 'fusiondistill']);
    const cellsOf = (i: number) => [...rows[i]![3]!.matchAll(/<td>(.*?)<\/td>/g)].map((m) => m[1]);
    expect(cellsOf(0)).toEqual(['93.8', '43.8', '83.8', '83.8', '83.8', '73.8']);
    expect(cellsOf(1)).toEqual(['—', '85.0', '88.0', '87.0', '86.0', '86.5']);
    // Labels are escaped, never markup.
    expect(html).not.toContain('<script>');
    expect(rows[2]![2]).toBe('ModelSoups, BN copied &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('placeholder &amp; &lt;b&gt;not&lt;/b&gt; tuned');
  });

  it('draws one chart per degradation with a line per row, and the stage times', () => {
    const html = renderReportHtml(report());
    expect(html.match(/<svg xmlns/g)).toHaveLength(4);
    // Base, Oracle, soup, FusionDistill in each of the 4 charts.
    expect(html.match(/<polyline data-row="oracle"/g)).toHaveLength(4);
    expect(html.match(/<polyline /g)).toHaveLength(16);
    // One vertex per evaluated level.
    const basePoly = html.match(/<polyline data-row="base"[^>]*points="([^"]+)"/)![1]!.split(' ');
    expect(basePoly).toHaveLength(3);
    expect(html).toContain('<th>base</th><td>12 min 34 s</td><td>12.3%</td><td>ran</td>');
    expect(html).toContain('<th>degrade-jpeg</th><td>12.3 s</td><td></td><td>cached</td>');
    expect(html).toContain('compile wall time 1 h 2 min');
    // A stage killed and resumed says so beside its summed time.
    expect(html).toMatch(/<th>distill<\/th><td>[^<]+<\/td><td><\/td><td>ran \(over 3 runs\)<\/td>/);
    expect(html).toContain('<th>all stages</th><td>13 min 46 s</td>'); // 754 s + 12.3 s + 60 s
    expect(html).toContain('<table id="reference">');
    // Self-contained: nothing is fetched.
    expect(html).not.toMatch(/<(script|link|img)\b|src=|href=/);
  });

  it('compares each row with the reference, cell by cell, flagging gaps over the tolerance', () => {
    const r = report();
    // Base: clean 93.8 (ref 93.8), JPEG 43.8 (ref 87.5). FusionDistill: clean 92.5 (ref 92.5),
    // AWGN 91.3 (ref 90.6: +0.7, within 1.0).
    const md = referenceComparisonMarkdown(r);
    const lines = md.split('\n');
    expect(lines[0]).toBe('| Row | Clean: ours / ref. / Δ | JPEG: ours / ref. / Δ | Blur: ours / ref. / Δ | AWGN: ours / ref. / Δ | S&P: ours / ref. / Δ | Avg: ours / ref. / Δ |');
    const base = lines.find((l) => l.startsWith('| Base |'))!;
    expect(base).toContain('| 93.8 / 93.8 / +0.0 |');
    expect(base).toContain('| 43.8 / 87.5 / **−43.7** |');
    // Oracle's clean cell exists on neither side; the soup row's label has no reference match.
    expect(lines.find((l) => l.startsWith('| Oracle |'))).toContain('| — / — / — |');
    expect(md).not.toContain('<script>');
    const fd = lines.find((l) => l.startsWith('| FusionDistill |'))!;
    expect(fd).toContain('| 92.5 / 92.5 / +0.0 |');
    expect(fd).toContain('| 91.3 / 90.6 / +0.7 |');
    // 6 + 5 + 6 cells compared (Base, Oracle without clean, FusionDistill); within 1.0: Base's
    // clean, Oracle's blur (88.0 / 87.9), FusionDistill's clean, AWGN, S&P (91.3 / 90.6) and Avg.
    expect(md).toContain('\n6 of 17 cells within 1.0 point of the reference');
    expect(() => referenceComparisonMarkdown({ ...r, reference: undefined })).toThrow(/no reference/);
  });

  it('markdown table for notes', () => {
    const md = reportTableMarkdown(report());
    expect(md.split('\n')[0]).toBe('| Row | Clean | JPEG | Blur | AWGN | S&P | Avg |');
    expect(md).toContain('| Oracle | — | 85.0 | 88.0 | 87.0 | 86.0 | 86.5 |');
  });

  it('both tables round a half-way accuracy the same way (1,857 of 2,000 is 92.9)', () => {
    // (100 × 0.9285).toFixed(1) is "92.8": the binary 92.85 sits a hair below the half.
    const r = report();
    const fd = r.rows.find((row) => row.label === 'FusionDistill')!;
    const half = { ...r, rows: r.rows.map((row) => (row === fd ? { ...row, summary: { ...row.summary!, clean: 1857 / 2000 } } : row)) };
    expect(reportTableMarkdown(half).split('\n').find((l) => l.startsWith('| FusionDistill |'))).toMatch(/^\| FusionDistill \| 92\.9 \|/);
    expect(referenceComparisonMarkdown(half).split('\n').find((l) => l.startsWith('| FusionDistill |'))).toContain('| 92.9 / 92.5 / +0.4 |');
  });
});

/** A summary with the same accuracy on every degradation (null: not evaluated). */
function summary(clean: number | null, degraded: number | null): EvalSummary {
  return { clean, jpeg: degraded, blur: degraded, awgn: degraded, saltpepper: degraded, degradedMean: degraded, samples: 100 };
}

function outcomes(): SubtaskOutcome[] {
  return [
    {
      name: 'tops',
      classes: [0, 2, 6],
      labels: ['T-shirt/top', 'Pullover', 'Shirt <b>'],
      macs: { full: 1_000_000, pruned: 250_000 },
      params: { full: 80_000, pruned: 21_000 },
      restricted: summary(0.9, 0.8),
      catro: { before: summary(0.5, 0.4), after: summary(0.85, 0.75) },
      l1: { before: summary(0.3, 0.3), after: summary(0.8, 0.7) },
      random: { before: summary(0.2, 0.2), after: summary(0.75, 0.6) },
      seconds: { prune: 3, fineTune: 60, total: 65 },
    },
    {
      name: 'shoes',
      classes: [5, 7, 9],
      labels: ['Sandal', 'Sneaker', 'Ankle boot'],
      macs: { full: 1_000_000, pruned: 500_000 },
      params: { full: 80_000, pruned: 40_000 },
      restricted: summary(0.99, 0.95),
      catro: { before: summary(0.9, 0.9), after: summary(0.97, 0.93) },
      seconds: { prune: 2, fineTune: 30, total: 33 },
    },
  ];
}

describe('report: subtasks', () => {
  const markers = (html: string) =>
    [...html.matchAll(/<(circle|rect|polygon) data-subtask="([^"]+)" data-method="([^"]+)" ([^>]*)>/g)].map((m) => {
      const attrs = m[4]!;
      const num = (name: string) => Number(new RegExp(`${name}="([^"]+)"`).exec(attrs)![1]);
      // Centre of the marker: circle cx/cy, rect x/y + half size, polygon mean of its vertices.
      let cx: number, cy: number;
      if (m[1] === 'circle') [cx, cy] = [num('cx'), num('cy')];
      else if (m[1] === 'rect') [cx, cy] = [num('x') + num('width') / 2, num('y') + num('height') / 2];
      else {
        const v = /points="([^"]+)"/.exec(attrs)![1]!.split(' ').map((p) => p.split(',').map(Number));
        [cx, cy] = [Math.min(...v.map((p) => p[0]!)) / 2 + Math.max(...v.map((p) => p[0]!)) / 2, Math.min(...v.map((p) => p[1]!)) / 2 + Math.max(...v.map((p) => p[1]!)) / 2];
      }
      return { subtask: m[2]!, method: m[3]!, cx, cy };
    });

  it('mean over clean and the four degradations counts each of the five once', () => {
    expect(meanCleanAndDegraded(summary(0.9, 0.8))).toBeCloseTo(0.82, 12);
    expect(meanCleanAndDegraded(summary(null, 0.8))).toBeNull();
    expect(meanCleanAndDegraded(summary(0.9, null))).toBeNull();
  });

  it('a report without subtasks has no subtask section', () => {
    const html = renderReportHtml(report());
    expect(html).not.toContain('Subtask models');
    expect(html).not.toContain('id="subtasks"');
    expect(html).not.toContain('subtask-chart');
    expect(renderReportHtml({ ...report(), subtasks: [] })).not.toContain('id="subtasks"');
  });

  it('renders one table row per subtask with MACs, params and accuracies', () => {
    const html = renderReportHtml({ ...report(), subtasks: outcomes() });
    const table = html.slice(html.indexOf('<table id="subtasks">'));
    const rows = [...table.slice(0, table.indexOf('</table>')).matchAll(/<tr data-subtask="([^"]+)"><th>(.*?)<\/th>(.*?)<\/tr>/g)];
    expect(rows.map((r) => r[1])).toEqual(['tops', 'shoes']);
    const cellsOf = (i: number) => [...rows[i]![3]!.matchAll(/<td>(.*?)<\/td>/g)].map((m) => m[1]);
    // tops: unpruned mean (0.9 + 4·0.8)/5 = 82.0; CATRO before (0.5 + 1.6)/5 = 42.0, after (0.85 + 3)/5 = 77.0;
    // L1 (0.3 + 1.2)/5 = 30.0 → (0.8 + 2.8)/5 = 72.0; random 20.0 → (0.75 + 2.4)/5 = 63.0.
    expect(cellsOf(0)).toEqual(['T-shirt/top, Pullover, Shirt &lt;b&gt;', '250,000', '25.0%', '21,000', '90.0', '80.0', '82.0', '42.0', '85.0', '75.0', '77.0', '30.0 → 72.0', '20.0 → 63.0', '1 min 5 s']);
    // shoes has no baselines.
    expect(cellsOf(1)!.slice(2, 4)).toEqual(['50.0%', '40,000']);
    expect(cellsOf(1)!.slice(-3)).toEqual(['—', '—', '33.0 s']);
    expect(html).not.toContain('Shirt <b>');
  });

  it('charts mean accuracy against MACs: one marker per evaluated variant, placed by its figures', () => {
    const html = renderReportHtml({ ...report(), subtasks: outcomes() });
    expect(html.match(/<svg xmlns/g)).toHaveLength(5); // 4 level charts + the subtask chart
    const pts = markers(html);
    expect(pts.map((p) => `${p.subtask}:${p.method}`)).toEqual(['tops:unpruned', 'tops:catro', 'tops:l1', 'tops:random', 'shoes:unpruned', 'shoes:catro']);
    const at = (s: string, m: string) => pts.find((p) => p.subtask === s && p.method === m)!;
    // x is linear in MACs from 0: the 25% budget sits at half the 50% budget's distance from the axis.
    const x0 = at('tops', 'unpruned').cx - (at('tops', 'unpruned').cx - at('tops', 'catro').cx) / 0.75;
    expect((at('shoes', 'catro').cx - x0) / (at('tops', 'catro').cx - x0)).toBeCloseTo(2, 1);
    expect(at('tops', 'l1').cx).toBeCloseTo(at('tops', 'catro').cx, 5);
    expect(at('shoes', 'unpruned').cx).toBeCloseTo(at('tops', 'unpruned').cx, 5);
    // y is linear in accuracy, higher accuracy drawn higher: 95.8 (shoes unpruned), 93.8, 82, 77, 72, 63.
    const order = ['shoes:unpruned', 'shoes:catro', 'tops:unpruned', 'tops:catro', 'tops:l1', 'tops:random'].map((k) => at(k.split(':')[0]!, k.split(':')[1]!).cy);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    const [yA, yB, yC] = [at('tops', 'catro').cy, at('tops', 'l1').cy, at('tops', 'random').cy];
    expect((yC - yA) / (yB - yA)).toBeCloseTo((0.77 - 0.63) / (0.77 - 0.72), 1);
    // Tooltips carry the figures; a legend entry per method present.
    expect(html).toContain('<title>tops, CATRO: 250,000 MACs, 77.0%</title>');
    expect(html).toContain('L1 norm</span>');
    expect(html).not.toMatch(/<(script|link|img)\b|src=|href=/);
  });

  it('leaves out variants that were not fully evaluated, and the baselines from the legend when none ran', () => {
    const [tops] = outcomes();
    const partial: SubtaskOutcome = { ...tops!, l1: undefined, random: undefined, catro: { before: summary(0.5, null), after: summary(0.85, null) } };
    const html = renderReportHtml({ ...report(), subtasks: [partial] });
    expect(markers(html).map((p) => p.method)).toEqual(['unpruned']);
    expect(html).not.toContain('L1 norm</span>');
    const row = html.slice(html.indexOf('<tr data-subtask="tops">'));
    expect([...row.slice(0, row.indexOf('</tr>')).matchAll(/<td>(.*?)<\/td>/g)].map((m) => m[1]).slice(7, 11)).toEqual(['—', '85.0', '—', '—']);
  });

  it('a compile without --baselines: no unpruned reference and no before-fine-tuning figure, in the table or the chart', () => {
    const [, shoes] = outcomes();
    const plain: SubtaskOutcome = { ...shoes!, restricted: undefined, catro: { after: shoes!.catro.after } };
    const html = renderReportHtml({ ...report(), subtasks: [plain] });
    expect(markers(html).map((p) => p.method)).toEqual(['catro']);
    const row = html.slice(html.indexOf('<tr data-subtask="shoes">'));
    // Unpruned clean / degr. / mean, CATRO before, CATRO clean / degr. / mean (0.97 + 4·0.93)/5 = 93.8.
    expect([...row.slice(0, row.indexOf('</tr>')).matchAll(/<td>(.*?)<\/td>/g)].map((m) => m[1]).slice(4, 11)).toEqual(['—', '—', '—', '—', '97.0', '93.0', '93.8']);
  });
});
