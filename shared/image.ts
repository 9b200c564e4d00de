/**
 * A decoded image: interleaved uint8 samples, row-major, `channels` per pixel.
 * Degradations and preprocessing take and return this shape, in Node and in Workers.
 */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  data: Uint8Array;
}
