/**
 * Where models come from. One interface for every runtime: the Workers static-assets binding,
 * the file system (edge/store-fs.ts), or memory (tests). The manifest is validated with the
 * shared schema, and model bytes are checked against the manifest's sha256 before use.
 */
import { parseManifest, type Manifest, type ModelEntry } from '../shared/manifest.ts';

export interface ModelStore {
  /** The manifest file's text, as stored (parsed and validated by parseManifestText; its sha256 names the version served). */
  manifestText(): Promise<string>;
  /** The bytes of the model file named by `file` in the manifest. */
  modelBytes(file: string): Promise<Uint8Array>;
  /** Human-readable location, used in error messages. */
  readonly location: string;
}

/** The manifest's text; throws an Error naming the location when it cannot be read. */
export async function readManifestText(store: ModelStore): Promise<string> {
  try {
    return await store.manifestText();
  } catch (err) {
    throw new Error(`cannot read the model manifest at ${store.location}: ${(err as Error).message}`);
  }
}

/** Parse and validate a manifest's text; throws an Error naming the file and every problem. */
export function parseManifestText(text: string, store: ModelStore): Manifest {
  const file = `${store.location}/manifest.json`;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not JSON: ${(err as Error).message}`);
  }
  return parseManifest(json, file);
}

/** Read and validate the manifest; throws an Error naming the location and every problem. */
export async function loadManifest(store: ModelStore): Promise<Manifest> {
  return parseManifestText(await readManifestText(store), store);
}

export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  let hex = '';
  for (const b of digest) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/** Fetch a model's bytes and check size and sha256 against its manifest entry. */
export async function verifiedModelBytes(store: ModelStore, entry: ModelEntry): Promise<Uint8Array> {
  const bytes = await store.modelBytes(entry.file);
  if (bytes.length !== entry.bytes) {
    throw new Error(`${store.location}/${entry.file} is ${bytes.length} bytes; the manifest says ${entry.bytes}`);
  }
  const hash = await sha256Hex(bytes);
  if (hash !== entry.sha256) {
    throw new Error(`${store.location}/${entry.file} has sha256 ${hash}; the manifest says ${entry.sha256}`);
  }
  return bytes;
}

/** Models held in memory: tests, and anything that already has the bytes. */
export class MemoryModelStore implements ModelStore {
  readonly location: string;
  private readonly text: string;
  constructor(
    manifestJson: unknown,
    private readonly files: Map<string, Uint8Array>,
    location = 'memory',
  ) {
    this.text = JSON.stringify(manifestJson);
    this.location = location;
  }
  async manifestText(): Promise<string> {
    return this.text;
  }
  async modelBytes(file: string): Promise<Uint8Array> {
    const bytes = this.files.get(file);
    if (!bytes) throw new Error(`${this.location}/${file} does not exist`);
    return bytes;
  }
}

/** Models served as static assets (Workers `ASSETS` binding, or any fetch-like function). */
export class FetchModelStore implements ModelStore {
  constructor(
    private readonly fetcher: { fetch(request: Request): Promise<Response> },
    /** Absolute URL of the folder that holds manifest.json, ending in '/'. */
    private readonly base: string,
  ) {}
  get location(): string {
    return this.base.replace(/\/$/, '');
  }
  private async get(file: string): Promise<Response> {
    const response = await this.fetcher.fetch(new Request(new URL(file, this.base)));
    if (!response.ok) throw new Error(`${this.location}/${file}: HTTP ${response.status}`);
    return response;
  }
  async manifestText(): Promise<string> {
    return (await this.get('manifest.json')).text();
  }
  async modelBytes(file: string): Promise<Uint8Array> {
    return new Uint8Array(await (await this.get(file)).arrayBuffer());
  }
}
