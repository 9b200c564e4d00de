/** Prometheus text metrics for the Node, Bun and Deno servers (per process). */
import type { ModelPool } from './engine.ts';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export class Metrics {
  inFlight = 0;
  private readonly requests = new Map<string, number>();
  private readonly latency = new Map<string, Histogram>();

  observe(method: string, route: string, status: number, seconds: number): void {
    const key = `method="${esc(method)}",route="${esc(route)}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    const hkey = `route="${esc(route)}"`;
    let h = this.latency.get(hkey);
    if (!h) this.latency.set(hkey, (h = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) h!.counts[i]!++;
    });
    h.sum += seconds;
    h.count++;
  }

  render(pool: ModelPool): string {
    const lines: string[] = [];
    lines.push('# HELP facet_http_requests_total HTTP requests by method, route and status.', '# TYPE facet_http_requests_total counter');
    for (const [k, v] of this.requests) lines.push(`facet_http_requests_total{${k}} ${v}`);
    lines.push('# HELP facet_http_request_duration_seconds Request latency by route.', '# TYPE facet_http_request_duration_seconds histogram');
    for (const [k, h] of this.latency) {
      BUCKETS.forEach((b, i) => lines.push(`facet_http_request_duration_seconds_bucket{${k},le="${b}"} ${h.counts[i]}`));
      lines.push(`facet_http_request_duration_seconds_bucket{${k},le="+Inf"} ${h.count}`);
      lines.push(`facet_http_request_duration_seconds_sum{${k}} ${h.sum}`, `facet_http_request_duration_seconds_count{${k}} ${h.count}`);
    }
    lines.push('# HELP facet_inferences_total Images classified, by model.', '# TYPE facet_inferences_total counter');
    for (const m of pool.manifest.models) lines.push(`facet_inferences_total{model="${esc(m.id)}"} ${pool.inferences.get(m.id) ?? 0}`);
    lines.push('# HELP facet_model_loaded Whether a model session is in memory (1) or failed (-1).', '# TYPE facet_model_loaded gauge');
    for (const s of pool.states()) lines.push(`facet_model_loaded{model="${esc(s.id)}"} ${s.state === 'ready' ? 1 : s.state === 'failed' ? -1 : 0}`);
    lines.push('# HELP facet_wasm_heap_bytes onnxruntime-web linear memory.', '# TYPE facet_wasm_heap_bytes gauge', `facet_wasm_heap_bytes ${pool.heapBytes}`);
    lines.push('# HELP facet_http_requests_in_flight Requests being served.', '# TYPE facet_http_requests_in_flight gauge', `facet_http_requests_in_flight ${this.inFlight}`);
    return lines.join('\n') + '\n';
  }
}
