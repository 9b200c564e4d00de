/** Types of scripts/serve-node.mjs (plain JavaScript so that it starts without tsx). */
export const BUNDLE: string;
export const BUNDLE_CJS: string;
/** Run a CommonJS file through V8's code cache (`<file>.v8cache`); writeCache() writes it anew. */
export function runCached(file: string): { exports: Record<string, unknown>; cache: 'used' | 'rejected' | 'none'; writeCache: () => void };
/** Why the bundle must be rebuilt, or null when every recorded input has its recorded size and mtime, or else its recorded sha256. */
export function staleReason(out?: string, root?: string): string | null;
