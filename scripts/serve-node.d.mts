/** Types of scripts/serve-node.mjs (plain JavaScript so that it starts without tsx). */
export const BUNDLE: string;
/** Why the bundle must be rebuilt, or null when every recorded input has its recorded size and mtime, or else its recorded sha256. */
export function staleReason(out?: string, root?: string): string | null;
