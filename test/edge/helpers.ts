import type { ChildProcess } from 'node:child_process';
/** Shared setup for the edge tests: the fixture models, fixture images, an app over them. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createApp, type AppOptions, type FacetApp } from '../../edge/app.ts';
import { FsModelStore } from '../../edge/store-fs.ts';
import { compileWasmFromNodeModules } from '../../edge/wasm-files.ts';

export const FIXTURE_MODELS = 'test/fixtures/edge/models';
export const FIXTURE_IMAGES = 'test/fixtures/edge/images';

export const image = (name: string): Uint8Array<ArrayBuffer> => Uint8Array.from(readFileSync(join(FIXTURE_IMAGES, name)));

let wasm: ReturnType<typeof compileWasmFromNodeModules> | undefined;
export const fixtureWasm = () => (wasm ??= compileWasmFromNodeModules());

export async function fixtureApp(options: Partial<AppOptions> = {}): Promise<FacetApp> {
  return createApp({ store: new FsModelStore(FIXTURE_MODELS), wasm: await fixtureWasm(), ...options });
}

/** A PNG signature plus an IHDR chunk claiming width×height (no pixel data: never decoded). */
export function pngHeaderClaiming(width: number, height: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(33);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  const v = new DataView(b.buffer);
  v.setUint32(16, width);
  v.setUint32(20, height);
  b.set([8, 2, 0, 0, 0], 24);
  return b;
}

/** A JPEG SOI plus a baseline SOF0 segment claiming width×height. */
export function jpegHeaderClaiming(width: number, height: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array([0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 8, height >> 8, height & 255, width >> 8, width & 255, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1]);
  return b;
}

export const toBase64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

/**
 * Waits for a spawned server's "serving … on http://host:port" line (stdout or stderr) and
 * returns the URL; `output()` is everything the child printed so far. Rejects if it exits first.
 */
export function servingUrl(child: ChildProcess, what = 'server'): { url: Promise<string>; output: () => string } {
  let output = '';
  const url = new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d;
      const m = /serving .* on (http:\/\/[\d.]+:\d+)/.exec(output);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}:\n${output}`)));
  });
  return { url, output: () => output };
}
