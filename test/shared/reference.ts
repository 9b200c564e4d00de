/** Loader for test/fixtures/shared/reference.json (made by scripts/reference/make_shared_fixtures.py). */
import { readFileSync } from 'node:fs';
import type { RawImage } from '../../shared/image.ts';

export interface FixtureImage {
  name: string;
  width: number;
  height: number;
  channels: 1 | 3;
  data: number[];
}

export interface Reference {
  versions: Record<string, string | boolean>;
  jpeg: { image: FixtureImage; quality: number; quant: Record<string, number[]>; expected: number[] }[];
  blur: { image: FixtureImage; level: number; expected: number[] }[];
  gray: { image: FixtureImage; expected: number[] }[];
  resize: { image: FixtureImage; width: number; height: number; expected: number[] }[];
}

export const reference = JSON.parse(
  readFileSync(new URL('../fixtures/shared/reference.json', import.meta.url), 'utf8'),
) as Reference;

export function toRaw(img: FixtureImage): RawImage {
  return { width: img.width, height: img.height, channels: img.channels, data: Uint8Array.from(img.data) };
}
