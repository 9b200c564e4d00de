/**
 * Hot reload on Node, Bun and Deno (edge/node.ts starts it for all three): a watch on the models
 * folder and a periodic check, both calling `check` (ServedModels.check, which switches to the
 * folder's manifest when it changed and can be served).
 *
 * The folder is watched, not manifest.json: a publish renames a new file over the manifest
 * (compiler/pipeline/publish.ts), and a watch on the file would stay on the replaced one. Any
 * event in the folder triggers a check: a check of an unchanged manifest is one small read and
 * a hash, checks do not overlap (ServedModels), and a manifest refused because a model file was
 * missing is checked again when that file arrives. File watching misses changes on network file
 * systems, some container mounts and a models folder swapped by a symbolic link, and can fail
 * (too many watches); the periodic check covers those, and `POST /admin/reload` forces one.
 */
import { watch, type FSWatcher } from 'node:fs';

export interface WatchOptions {
  /** Watch the folder for changes (default true). */
  watch?: boolean;
  /** Milliseconds between periodic checks; 0 for none. */
  pollMs: number;
  /** Where a failed watch is reported. */
  warn?: (line: string) => void;
}

export interface ModelsWatch {
  /** Whether the file watch is running (false when off or when it failed: only the periodic check is left). */
  readonly watching: boolean;
  close(): void;
}

/** A timer or watcher that must not keep the process alive by itself (Node and Bun have unref; so has Deno's node:fs watcher). */
const unref = (handle: unknown) => (handle as { unref?: () => void } | undefined)?.unref?.();

export function watchModelsFolder(dir: string, check: () => Promise<unknown>, options: WatchOptions): ModelsWatch {
  const warn = options.warn ?? ((line: string) => console.warn(line));
  // check() never rejects (a refusal is a result), but a bug must not become an unhandled rejection.
  const run = () => void check().catch((err) => warn(`facet edge: checking ${dir} for a new manifest failed: ${(err as Error).message}`));
  let watcher: FSWatcher | undefined;
  const fallback = options.pollMs > 0 ? `the check every ${options.pollMs} ms` : 'POST /admin/reload';
  if (options.watch !== false) {
    try {
      watcher = watch(dir, run);
      unref(watcher);
      watcher.on('error', (err) => {
        warn(`facet edge: watching ${dir} failed (${err.message}); new manifests are found by ${fallback}`);
        watcher?.close();
        watcher = undefined;
      });
    } catch (err) {
      warn(`facet edge: cannot watch ${dir} (${(err as Error).message}); new manifests are found by ${fallback}`);
    }
  }
  const timer = options.pollMs > 0 ? setInterval(run, options.pollMs) : undefined;
  unref(timer);
  return {
    get watching() {
      return watcher !== undefined;
    },
    close() {
      watcher?.close();
      watcher = undefined;
      if (timer !== undefined) clearInterval(timer);
    },
  };
}
