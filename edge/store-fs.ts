/** Models read from a folder on disk (Node, Bun, Deno). */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ModelStore } from './store.ts';

export class FsModelStore implements ModelStore {
  readonly location: string;
  constructor(dir: string) {
    this.location = resolve(dir);
  }
  async manifestText(): Promise<string> {
    return readFile(join(this.location, 'manifest.json'), 'utf8');
  }
  async modelBytes(file: string): Promise<Uint8Array> {
    // The manifest schema only admits plain file names, so this cannot leave the folder.
    return new Uint8Array(await readFile(join(this.location, file)));
  }
}
