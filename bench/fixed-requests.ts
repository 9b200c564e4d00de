/**
 * A fixed number of HTTP requests with autocannon, timed to the last response.
 *
 * autocannon ends an `amount` run only at its next one-second tick, so its `duration` (and
 * `requests.average`, a mean of whole-second buckets) count up to a second of idle time: a
 * 5,000-request run at ~1,250 req/s printed 1000 or 833. Here throughput is the completed
 * requests over the time from the start to the last response.
 */
import autocannon from 'autocannon';

export interface FixedRequestsResult {
  result: autocannon.Result;
  /** Seconds from the start to the last response. */
  seconds: number;
  requestsPerSec: number;
}

/** `onResponse` sees every response (e.g. to count statuses). */
export function fixedRequests(opts: autocannon.Options & { amount: number }, onResponse?: (status: number) => void): Promise<FixedRequestsResult> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let last = start;
    const instance = autocannon(opts, (err, result) => {
      if (err) return reject(err);
      const seconds = (last - start) / 1000;
      resolve({ result, seconds, requestsPerSec: result.requests.total / seconds });
    });
    instance.on('response', (_client, status) => {
      last = performance.now();
      onResponse?.(status);
    });
  });
}
