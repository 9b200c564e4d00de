/**
 * The model set a server answers from, and switching it while serving (hot reload).
 *
 * A set is one manifest, named by the sha256 of its file. Each request holds the set that was
 * served when it came in (`acquire`/`release`, a middleware in edge/app.ts) and answers from it
 * to the end, whatever is switched meanwhile; the switch itself is one assignment, so a new
 * request sees either the old set or the new one. Sessions are the pool's, by model file and
 * content (edge/engine.ts): a model whose file the new manifest keeps keeps its session, and the
 * sessions of models it no longer names are released once the last request on an older set ends.
 *
 * `check` reads the store's manifest and switches when it changed, and only when it can serve
 * it: a manifest that fails validation, or a model file whose size or sha256 does not match it,
 * is refused with a log line, and the set served stays. Runtime-agnostic; what calls `check` is
 * the runtime's business: a folder watch and a periodic check on Node, Bun and Deno
 * (edge/watch-models.ts), `POST /admin/reload` everywhere. On Workers the assets only change
 * with a deploy, which starts new isolates, so there a check never finds anything new.
 */
import type { Manifest, ModelEntry } from '../shared/manifest.ts';
import { modelKey, type ModelPool } from './engine.ts';
import { parseManifestText, readManifestText, sha256Hex, type ModelStore } from './store.ts';

export interface ModelSet {
  manifest: Manifest;
  /** sha256 of the manifest file: which version of the models folder this is. */
  sha256: string;
  /** When this process started serving it (ISO 8601). */
  servedSince: string;
}

export type CheckResult =
  /** `set` is the set served after the check. */
  | { status: 'unchanged' | 'reloaded'; set: ModelSet }
  /** The store's manifest could not be served; `set` is the one still served. */
  | { status: 'refused'; set: ModelSet; error: string };

export interface ReloadLog {
  info(line: string): void;
  error(line: string): void;
}

/** Read, validate and name the store's manifest: the set a server starts with. */
export async function loadModelSet(store: ModelStore): Promise<ModelSet> {
  const text = await readManifestText(store);
  return { manifest: parseManifestText(text, store), sha256: await sha256Hex(text), servedSince: new Date().toISOString() };
}

/** The manifest fields an answer shows for the set it describes (/v1/models, /readyz, /admin/reload). */
export function manifestSummary(set: ModelSet) {
  return { sha256: set.sha256, createdAt: set.manifest.createdAt, servedSince: set.servedSince };
}

/** "+bottoms, −shoes, tops replaced, full and footwear kept": what a switch changes, for the log. */
export function describeChange(before: Manifest, after: Manifest): string {
  const old = new Map(before.models.map((m) => [m.id, m]));
  const ids = new Set(after.models.map((m) => m.id));
  const same = (a: ModelEntry, b: ModelEntry) => modelKey(a) === modelKey(b);
  const added = after.models.filter((m) => !old.has(m.id)).map((m) => `+${m.id}`);
  const removed = before.models.filter((m) => !ids.has(m.id)).map((m) => `−${m.id}`);
  const replaced = after.models.filter((m) => old.has(m.id) && !same(old.get(m.id)!, m)).map((m) => `${m.id} replaced`);
  const kept = after.models.filter((m) => old.has(m.id) && same(old.get(m.id)!, m)).map((m) => m.id);
  return [...added, ...removed, ...replaced, ...(kept.length ? [`${kept.join(', ')} kept`] : [])].join(', ') || 'same models';
}

export class ServedModels {
  private served: ModelSet;
  /** Requests in flight, by the set they hold; a set no longer served stays here until its last one ends. */
  private readonly requests = new Map<ModelSet, number>();
  private running?: Promise<CheckResult>;
  private queued?: Promise<CheckResult>;
  /** The last refusal logged, so that a periodic check of the same bad manifest does not log it again. */
  private refusal?: string;

  constructor(
    private readonly store: ModelStore,
    private readonly pool: ModelPool,
    initial: ModelSet,
    private readonly log: ReloadLog = { info: (line) => console.log(line), error: (line) => console.error(line) },
  ) {
    this.served = initial;
  }

  /** The set served now. */
  get current(): ModelSet {
    return this.served;
  }

  /** The set served now, held for one request until `release`. */
  acquire(): ModelSet {
    const set = this.served;
    this.requests.set(set, (this.requests.get(set) ?? 0) + 1);
    return set;
  }

  release(set: ModelSet): void {
    const left = (this.requests.get(set) ?? 1) - 1;
    if (left > 0) {
      this.requests.set(set, left);
      return;
    }
    this.requests.delete(set);
    // The last request on a replaced set: the sessions only it used go now.
    if (set !== this.served) this.pool.serve(this.served.manifest, this.draining());
  }

  /**
   * Switch to the store's manifest if it changed and can be served. One check runs at a time;
   * calls during one share the next, which starts when it ends (the manifest may have changed
   * after the running one read it).
   */
  check(): Promise<CheckResult> {
    if (!this.running) {
      this.running = this.checkNow().finally(() => (this.running = undefined));
      return this.running;
    }
    // After the running check whatever its outcome: a check that threw must not stop all later ones.
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.check();
      });
    return this.queued;
  }

  private draining(): Manifest[] {
    return [...this.requests.keys()].filter((s) => s !== this.served).map((s) => s.manifest);
  }

  private async checkNow(): Promise<CheckResult> {
    const before = this.served;
    let text: string;
    try {
      text = await readManifestText(this.store);
    } catch (err) {
      return this.refuse((err as Error).message);
    }
    const sha256 = await sha256Hex(text);
    if (sha256 === before.sha256) return { status: 'unchanged', set: before };
    let manifest: Manifest;
    try {
      manifest = parseManifestText(text, this.store);
    } catch (err) {
      return this.refuse(`manifest ${sha256}: ${(err as Error).message}`);
    }
    // Every file is checked before the switch, so that the new set never answers 503 for a
    // model the old one served; those with a session loaded were checked when it was made.
    const problems = await this.pool.verify(manifest);
    if (problems.length > 0) return this.refuse(`manifest ${sha256}: ${problems.join('; ')}`);
    const next: ModelSet = { manifest, sha256, servedSince: new Date().toISOString() };
    this.served = next;
    this.pool.serve(manifest, this.draining());
    this.refusal = undefined;
    this.log.info(`facet edge: now serving manifest ${sha256} from ${this.store.location} (${describeChange(before.manifest, manifest)})`);
    return { status: 'reloaded', set: next };
  }

  private refuse(error: string): CheckResult {
    if (error !== this.refusal) {
      this.refusal = error;
      this.log.error(`facet edge: reload refused, still serving manifest ${this.served.sha256}: ${error}`);
    }
    return { status: 'refused', set: this.served, error };
  }
}
