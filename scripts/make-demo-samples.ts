/**
 * The demo page's sample gallery: the first few Fashion-MNIST test images of every class as
 * PNGs, so that a visitor can classify something with one click. Images that examples/
 * already holds (the README's curl examples) are listed under their existing name instead of
 * being written twice.
 *
 *   npx tsx scripts/make-demo-samples.ts      reads Debian's dataset-fashion-mnist (or
 *                                             ~/.cache/facet/data), writes examples/gallery/
 *                                             and examples/gallery.json
 *
 * Deterministic: test/edge/demo.test.ts checks that the committed files are what this makes.
 * edge/demo/build.ts bundles the listed images into the demo page's script.
 */
import { encode } from 'fast-png';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { indicesByClass } from '../compiler/data/split.ts';
import { loadDataset, type LabelledImages } from '../compiler/data/index.ts';
import { decodeImage } from '../compiler/data/decode-image.ts';

export const EXAMPLES_DIR = 'examples';
export const GALLERY_INDEX = `${EXAMPLES_DIR}/gallery.json`;
/** Test images per class in the gallery. */
export const SAMPLES_PER_CLASS = 3;

export interface GallerySample {
  /** Path under examples/. */
  file: string;
  label: string;
  /** Position in the Fashion-MNIST test set (t10k). */
  testIndex: number;
}

export interface GalleryIndex {
  source: string;
  /** In the gallery's order: the first image of every class, then the second, and so on. */
  samples: GallerySample[];
}

const slug = (label: string) => label.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

/** The gallery's files (path under examples/ → PNG bytes, new files only) and its index. */
export function demoSamples(test: LabelledImages): { files: Map<string, Uint8Array>; index: GalleryIndex } {
  if (test.channels !== 1) throw new Error(`expected gray Fashion-MNIST images, got ${test.channels} channels`);
  const pixels = test.height * test.width;
  const image = (i: number) => test.images.subarray(i * pixels, (i + 1) * pixels);
  // Gray pixels of the images examples/ already has, so the gallery reuses those files.
  const existing = readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.png'))
    .sort()
    .map((file) => {
      const img = decodeImage(readFileSync(join(EXAMPLES_DIR, file)));
      return { file, gray: img.channels === 1 ? img.data : undefined };
    });
  const byClass = indicesByClass(test).map((members) => members.slice(0, SAMPLES_PER_CLASS));
  const files = new Map<string, Uint8Array>();
  const samples: GallerySample[] = [];
  for (let rank = 0; rank < SAMPLES_PER_CLASS; rank++) {
    for (const [label, members] of byClass.entries()) {
      const testIndex = members[rank];
      if (testIndex === undefined) continue;
      const name = test.classNames[label]!;
      let file = existing.find((e) => e.gray && sameBytes(e.gray, image(testIndex)))?.file;
      if (!file) {
        file = `gallery/${slug(name)}-${testIndex}.png`;
        files.set(file, encode({ width: test.width, height: test.height, channels: 1, depth: 8, data: image(testIndex) }));
      }
      samples.push({ file, label: name, testIndex });
    }
  }
  return { files, index: { source: `Fashion-MNIST test set (t10k): the first ${SAMPLES_PER_CLASS} images of every class`, samples } };
}

/** gallery.json as written: one sample a line. */
export function galleryIndexText(index: GalleryIndex): string {
  const samples = index.samples.map((s) => `  ${JSON.stringify(s)}`).join(',\n');
  return `{\n "source": ${JSON.stringify(index.source)},\n "samples": [\n${samples}\n ]\n}\n`;
}

if (process.argv[1]?.endsWith('make-demo-samples.ts')) {
  const { files, index } = demoSamples(await loadDataset({ name: 'fashion-mnist', split: 'test' }));
  mkdirSync(join(EXAMPLES_DIR, 'gallery'), { recursive: true });
  for (const [file, bytes] of files) writeFileSync(join(EXAMPLES_DIR, file), bytes);
  writeFileSync(GALLERY_INDEX, galleryIndexText(index));
  console.log(`wrote ${files.size} PNGs to ${EXAMPLES_DIR}/gallery/ and ${GALLERY_INDEX} (${index.samples.length} samples)`);
}
