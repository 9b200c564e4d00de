/** Models read from a folder on disk (Node, Bun, Deno). */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ModelStore } from './store.ts';

export class FsModelStore implements ModelStore {
  readonly location: string;
  constructor(dir: string) {
    this.location = resolve(dir);
  }
  async manifest(): Promise<unknown> {
    const path = join(this.location, 'manifest.json');
    const text = await readFile(path, 'utf8');
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new Error(`${path} is not JSON: ${(err as Error).message}`);
    }
  }
  async modelBytes(file: string): Promise<Uint8Array> {
    // The manifest schema only admits plain file names, so this cannot leave the folder.
    return new Uint8Array(await readFile(join(this.location, file)));
  }
}
