/**
 * Inference sessions, one per model, created lazily from verified bytes and cached under a
 * memory budget. The budget counts ORT's wasm heap, not file sizes: a model costs what the heap
 * grew by when its session was created (estimated from its file size until measured). The heap
 * never shrinks, so evicting a session only frees room inside it for the next one.
 *
 * A model is known by its file and content (`modelKey`), not by its id, so that when the server
 * switches to a new manifest (edge/served-models.ts) a model whose file did not change keeps its
 * session, and a model recompiled under the same id gets a new one.
 */
import type { Manifest, ModelEntry } from '../shared/manifest.ts';
import { ClientError } from './decode.ts';
import { ortHeapBytes, ortInitialHeapBytes, type Ort } from './ort.ts';
import { markStartup } from './startup.ts';
import { verifiedModelBytes, type ModelStore } from './store.ts';
import { WARM_UP_INPUT_SHAPE, WARM_UP_MODEL_BASE64 } from './warm-up-model.ts';

type Session = Awaited<ReturnType<Ort['InferenceSession']['create']>>;

export interface ModelState {
  id: string;
  state: 'unloaded' | 'loading' | 'ready' | 'failed';
  error?: string;
  /** Wasm heap growth measured when the session was created. */
  heapBytes?: number;
}

interface Slot {
  /** The entry the slot was made for; its file, size and sha256 are what every entry with this key shares. */
  entry: ModelEntry;
  session?: Promise<Session>;
  ready?: Session;
  cost: number;
  measured: boolean;
  lastUsed: number;
  /** Runs in progress; a session in use is never released under them. */
  active: number;
  error?: string;
  /** Startup marks are taken once per model (first request for a session, verified read, session, run), so they stay few. */
  marked: { requested?: true; bytes?: true; session?: true; run?: true };
  /** No manifest served or still answering requests names it: its session goes once no run uses it. */
  dropped?: true;
}

/** Which session a manifest entry uses: one per model file and content. */
export const modelKey = (entry: ModelEntry): string => `${entry.file}@${entry.sha256}`;

const newSlot = (entry: ModelEntry): Slot => ({ entry, cost: estimateCost(entry), measured: false, lastUsed: 0, active: 0, marked: {} });

/** The options of every session; the warm-up uses the same, so that it exercises the same code. */
const SESSION_OPTIONS = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' } as const;

/** Until a session is made, assume weights plus working memory of about four times the file. */
const estimateCost = (entry: ModelEntry) => entry.bytes * 4 + (1 << 20);

export class ModelPool {
  /** By modelKey. */
  private readonly slots = new Map<string, Slot>();
  private clock = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** Images run, by model id (across manifests: a model recompiled under its id keeps counting). */
  readonly inferences = new Map<string, number>();
  private served: Manifest;
  /** Every session made and not yet released, with its model's file. */
  private readonly live = new Map<Session, string>();

  constructor(
    private readonly ort: Ort,
    private readonly store: ModelStore,
    manifest: Manifest,
    /** Bytes of wasm heap the cached sessions may use together. */
    readonly budgetBytes = 96 * 2 ** 20,
  ) {
    this.served = manifest;
    for (const entry of manifest.models) if (!this.slots.has(modelKey(entry))) this.slots.set(modelKey(entry), newSlot(entry));
  }

  /** The manifest served now: `states()` and the metrics describe its models. */
  get manifest(): Manifest {
    return this.served;
  }

  /**
   * Serve `manifest`. Sessions of its models, and of the models of `draining` (manifests that
   * requests in flight still answer from), are kept; every other session is released as soon as
   * no run uses it.
   */
  serve(manifest: Manifest, draining: readonly Manifest[] = []): void {
    const named = new Set<string>();
    for (const m of [manifest, ...draining]) {
      for (const entry of m.models) {
        const key = modelKey(entry);
        named.add(key);
        if (!this.slots.has(key)) this.slots.set(key, newSlot(entry));
      }
    }
    for (const [key, slot] of this.slots) {
      if (named.has(key)) continue;
      this.slots.delete(key);
      slot.dropped = true;
      this.releaseIfDropped(slot);
    }
    this.served = manifest;
  }

  /**
   * Check the files of `manifest`'s models against it (size and sha256), except those whose
   * session is loaded (their bytes were checked when it was made). Returns the problems, one per
   * model; none means every model can be loaded. A model that failed before and checks out now
   * (its file was put right) may be loaded again.
   */
  async verify(manifest: Manifest): Promise<string[]> {
    const problems: string[] = [];
    for (const entry of manifest.models) {
      const slot = this.slots.get(modelKey(entry));
      if (slot?.ready) continue;
      try {
        await verifiedModelBytes(this.store, entry);
        if (slot) slot.error = undefined;
      } catch (err) {
        problems.push(`model "${entry.id}": ${(err as Error).message}`);
      }
    }
    return problems;
  }

  /** Sessions held now, by model file: those of models no longer served but still running included. */
  sessionFiles(): string[] {
    return [...this.live.values()].sort();
  }

  /** Release a dropped slot's session once no run uses it (runs call this as they end). */
  private releaseIfDropped(slot: Slot): void {
    if (!slot.dropped || slot.active > 0 || !slot.ready) return;
    const session = this.unload(slot);
    // In the queue, like creation and eviction: heap growth stays attributable to one model.
    this.queue = this.queue.then(() => session.release()).catch((err) => console.warn(`facet edge: releasing the session of ${slot.entry.file} failed: ${(err as Error).message}`));
  }

  /** Take a loaded slot's session off it, to be released by the caller. */
  private unload(slot: Slot): Session {
    const session = slot.ready!;
    slot.ready = undefined;
    slot.session = undefined;
    this.live.delete(session);
    return session;
  }

  get heapBytes(): number {
    return ortHeapBytes();
  }

  /** The state of each model of `manifest` (default: the one served), in its order. */
  states(manifest: Manifest = this.served): ModelState[] {
    return manifest.models.map((entry) => {
      const s = this.slots.get(modelKey(entry))!;
      return {
        id: entry.id,
        state: s.error ? 'failed' : s.ready ? 'ready' : s.session ? 'loading' : 'unloaded',
        ...(s.error ? { error: s.error } : {}),
        ...(s.measured ? { heapBytes: s.cost } : {}),
      };
    });
  }

  /** The session for a model, creating it if needed; ClientError 503 when it cannot be loaded. */
  async session(entry: ModelEntry): Promise<Session> {
    const slot = this.slots.get(modelKey(entry));
    if (!slot) throw new ClientError(404, 'unknown_model', `model "${entry.id}" (${entry.file}) is not in a manifest served`);
    slot.lastUsed = ++this.clock;
    if (slot.error) throw new ClientError(503, 'model_unavailable', `model "${entry.id}" is unavailable: ${slot.error}`);
    slot.session ??= this.create(slot);
    try {
      return await slot.session;
    } catch (err) {
      throw new ClientError(503, 'model_unavailable', `model "${entry.id}" is unavailable: ${(err as Error).message}`);
    }
  }

  /**
   * Initialise onnxruntime before a request needs it, by creating, running and releasing a
   * session of a tiny model with the same operators as ours (edge/warm-up-model.ts). Most of a
   * process's first session is ORT's one-time set-up, not the model: instantiating its wasm,
   * its runtime init, and the engine compiling the wasm functions that build and run a session.
   * Measured on the 2-core dev machine: the footwear model's session takes 271–306 ms to create
   * in a fresh Node process and 4–5 ms after this warm-up; the first request 2 s after a server
   * started answers in 26 ms instead of 320 (Node), 27 instead of 182 (Bun), 22 instead of 311
   * (Deno) (docs/api.md, "Start-up warm-up"). The servers start it once the app is created
   * (edge/node.ts), so it overlaps the time until the first request; it is queued like session
   * creation, so a request that comes meanwhile
   * waits for it instead of doing the same work beside it. Never rejects: a failure is logged
   * and left for the first real session to report.
   */
  warmUp(): Promise<void> {
    const run = this.queue.then(async () => {
      const bytes = Uint8Array.from(atob(WARM_UP_MODEL_BASE64), (c) => c.charCodeAt(0));
      const session = await this.ort.InferenceSession.create(bytes, SESSION_OPTIONS);
      try {
        const size = WARM_UP_INPUT_SHAPE.reduce<number>((a, b) => a * b, 1);
        await session.run({ [session.inputNames[0]!]: new this.ort.Tensor('float32', new Float32Array(size), [...WARM_UP_INPUT_SHAPE]) });
      } finally {
        await session.release();
      }
      markStartup('ort-warmed');
    });
    this.queue = run.catch(() => undefined);
    return run.catch((err) => console.warn(`facet: onnxruntime warm-up failed (the first request will load it instead): ${(err as Error).message}`));
  }

  /** Session creation is serialised so that heap growth can be attributed to one model. */
  private create(slot: Slot): Promise<Session> {
    const run = this.queue.then(async () => {
      let bytes: Uint8Array;
      if (!slot.marked.requested) {
        slot.marked.requested = true;
        markStartup(`model-requested:${slot.entry.id}`);
      }
      try {
        bytes = await verifiedModelBytes(this.store, slot.entry);
        if (!slot.marked.bytes) {
          slot.marked.bytes = true;
          markStartup(`model-verified:${slot.entry.id}`);
        }
      } catch (err) {
        // Integrity failures are permanent for this process: the file will not fix itself.
        slot.error = (err as Error).message;
        throw err;
      }
      await this.makeRoom(slot);
      const before = ortHeapBytes();
      let session: Session;
      try {
        session = await this.ort.InferenceSession.create(bytes, SESSION_OPTIONS);
      } catch (err) {
        slot.error = `onnxruntime could not load ${slot.entry.file}: ${(err as Error).message}`;
        throw new Error(slot.error);
      }
      // Before the first session ORT is not instantiated yet; its starting heap is not the model's.
      const grew = ortHeapBytes() - (before || ortInitialHeapBytes());
      // A session that fit in already-grown heap shows no growth; keep the estimate then.
      if (grew > 0) slot.cost = grew;
      slot.measured = grew > 0 || slot.measured;
      slot.ready = session;
      this.live.set(session, slot.entry.file);
      // Dropped while it was being made: nothing will ask for it.
      this.releaseIfDropped(slot);
      if (!slot.marked.session) {
        slot.marked.session = true;
        markStartup(`session-created:${slot.entry.id}`);
      }
      return session;
    });
    this.queue = run.catch(() => undefined);
    run.catch(() => {
      slot.session = undefined;
    });
    return run;
  }

  /** Release least-recently-used sessions until `slot` fits the budget. */
  private async makeRoom(slot: Slot): Promise<void> {
    const loaded = () => [...this.slots.values()].filter((s) => s.ready && s !== slot && s.active === 0);
    let used = [...this.slots.values()].filter((s) => s.ready && s !== slot).reduce((sum, s) => sum + s.cost, 0);
    for (const victim of loaded().sort((a, b) => a.lastUsed - b.lastUsed)) {
      if (used + slot.cost <= this.budgetBytes) break;
      const session = this.unload(victim);
      used -= victim.cost;
      await session.release();
    }
  }

  /** Run a model on an NCHW float batch; returns logits, one row per image. */
  async run(entry: ModelEntry, input: Float32Array, batch: number): Promise<Float32Array[]> {
    const slot = this.slots.get(modelKey(entry));
    if (slot) slot.active++;
    let out: Awaited<ReturnType<Session['run']>>;
    const { channels, height, width } = entry.input;
    const tensor = new this.ort.Tensor('float32', input, [batch, channels, height, width]);
    try {
      // A loaded session is used as is (no extra await: this is the per-image path).
      let session = slot?.ready;
      if (session) slot!.lastUsed = ++this.clock;
      else session = await this.session(entry);
      out = await session.run({ [entry.input.name]: tensor });
    } finally {
      if (slot) {
        slot.active--;
        this.releaseIfDropped(slot);
      }
    }
    const logits = out[entry.output];
    if (!logits) throw new Error(`model "${entry.id}" has no output "${entry.output}"`);
    const data = logits.data as Float32Array;
    const k = entry.classes.length;
    if (data.length !== batch * k) throw new Error(`model "${entry.id}" returned ${data.length} values for ${batch}×${k} logits`);
    tensor.dispose();
    logits.dispose();
    this.inferences.set(entry.id, (this.inferences.get(entry.id) ?? 0) + batch);
    if (slot && !slot.marked.run) {
      slot.marked.run = true;
      markStartup(`first-run:${entry.id}`);
    }
    return Array.from({ length: batch }, (_, i) => data.slice(i * k, (i + 1) * k));
  }
}
