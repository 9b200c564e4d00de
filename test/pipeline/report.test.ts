import { describe, expect, it } from 'vitest';
import type { EvalPoint, EvalResult } from '../../compiler/pipeline/evaluate.ts';
import { modelRow, oracleRow, REFERENCE_FASHION_MNIST, renderReportHtml, reportTableMarkdown, REPORT_SCHEMA, type Report } from '../../compiler/pipeline/report.ts';
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
    expect(html).toContain('<th>all stages</th><td>12 min 46 s</td>'); // 754 s + 12.3 s
    expect(html).toContain('<table id="reference">');
    // Self-contained: nothing is fetched.
    expect(html).not.toMatch(/<(script|link|img)\b|src=|href=/);
  });

  it('markdown table for notes', () => {
    const md = reportTableMarkdown(report());
    expect(md.split('\n')[0]).toBe('| Row | Clean | JPEG | Blur | AWGN | S&P | Avg |');
    expect(md).toContain('| Oracle | — | 85.0 | 88.0 | 87.0 | 86.0 | 86.5 |');
  });
});
