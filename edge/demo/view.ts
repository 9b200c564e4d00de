/**
 * The demo page's pure parts: what the model is shown for an image, and how the page writes
 * the API's numbers. The page (client.ts) and its test (test/edge/demo.test.ts) both use
 * these, so the test can hold what the page shows against the API's own answer.
 */
import type { RawImage } from '../../shared/image.ts';
import type { DegradationKind, InputSpec } from '../../shared/manifest.ts';
import { degrade } from '../../shared/degrade.ts';
import { resizeBilinear, toChannels } from '../../shared/preprocess.ts';
import { Rng } from '../../shared/rng.ts';

/** The page's noise seed: a level always shows the same noise, so that levels compare. */
export const DEMO_NOISE_SEED = 20261126;

/**
 * An image as the models take it: their channels (alpha onto black), resized to their input,
 * both by shared/preprocess.ts, as the server would do it. The page degrades this, not the
 * picked image: the compiler trains with degradations at the models' resolution (a blur of
 * σ = 1 px on a 28×28 image, not on a photo), and the server's resize of it is then a copy.
 */
export function modelInput(img: RawImage, input: Pick<InputSpec, 'channels' | 'height' | 'width'>): RawImage {
  return resizeBilinear(toChannels(img, input.channels), input.width, input.height);
}

/** The degradation the page previews and sends, drawn with the shared code and the page's seed. */
export function degradeForDemo(img: RawImage, kind: DegradationKind | '', level: number): RawImage {
  return kind ? degrade(img, kind, level, new Rng(DEMO_NOISE_SEED)) : img;
}

/** A level when a kind is picked: clearly visible on a 28×28 image, well inside its range. */
export const STARTING_LEVEL: Record<DegradationKind, number> = { jpeg: 10, blur: 12, awgn: 40, saltpepper: 8 };

/** What a level means, in the kind's own unit. */
export function levelText(kind: DegradationKind, level: number): string {
  switch (kind) {
    case 'jpeg':
      return level >= 101 ? 'quality 101 (unchanged)' : `quality ${level}`;
    case 'blur':
      return `σ = ${(level / 10).toFixed(1)} px`;
    case 'awgn':
      return `σ = ${level} of 255`;
    case 'saltpepper':
      return `${level}% of pixels`;
  }
}

/** A softmax score or a share: one decimal of a percent. */
export const percent = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** Multiply-accumulates per image, in millions. */
export const mmacs = (macs: number): string => `${(macs / 1e6).toFixed(2)} M MACs`;

export const millis = (ms: number): string => `${ms.toFixed(1)} ms`;

/** What a model costs next to the full one: its share of the full model's MACs and the factor saved. */
export function macsShare(macs: number, fullMacs: number): string {
  return `${percent(macs / fullMacs)} of the full model's MACs${macs < fullMacs ? ` (${(fullMacs / macs).toFixed(1)}× fewer)` : ''}`;
}

export const serverTiming = (t: { decode_ms: number; infer_ms: number; total_ms: number }): string =>
  `${millis(t.total_ms)} (inference ${millis(t.infer_ms)})`;
