/**
 * Startup phase marks, for finding where a cold start spends its time (bench/edge-cold.ts).
 * With FACET_TRACE_STARTUP=1 in the environment (Node, Bun, Deno), each mark is printed on
 * stderr as `facet-startup <phase> <ms>`, ms counted from the runtime's time origin, which is
 * the process start on all three; elsewhere (workerd) marking costs nothing and prints nothing.
 * Marks are kept either way: `startupMarks()` lists them.
 */

export interface StartupMark {
  phase: string;
  /** performance.now() when the phase ended: milliseconds since the process started. */
  ms: number;
}

const marks: StartupMark[] = [];

function tracing(): boolean {
  // `process` exists in Node, Bun and Deno 2; workerd has none without nodejs_compat.
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.FACET_TRACE_STARTUP === '1';
}

const enabled = tracing();

/** Record that `phase` ended now. */
export function markStartup(phase: string): void {
  const ms = performance.now();
  marks.push({ phase, ms });
  if (enabled) console.error(`facet-startup ${phase} ${ms.toFixed(1)}`);
}

export function startupMarks(): readonly StartupMark[] {
  return marks;
}

/** Parse the marks out of a server's output (the bench reads them from the child's stderr). */
export function parseStartupMarks(output: string): StartupMark[] {
  const found: StartupMark[] = [];
  for (const m of output.matchAll(/^facet-startup (\S+) ([\d.]+)$/gm)) found.push({ phase: m[1]!, ms: Number(m[2]) });
  return found;
}
