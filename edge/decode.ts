/**
 * Image decoding for the edge: sniff the format from magic bytes, read the pixel size from the
 * header (PNG IHDR, JPEG SOF) and refuse oversized images *before* decoding, then decode with
 * the wasm codecs (@jsquash/png, @jsquash/jpeg). The codec wasm is handed in precompiled,
 * because workerd refuses to compile wasm from bytes at runtime.
 */
import { decode as pngDecode, init as pngInit } from '@jsquash/png/decode.js';
import { default as jpegDecode, init as jpegInit } from '@jsquash/jpeg/decode.js';
import jpegJs from 'jpeg-js';
import type { RawImage } from '../shared/image.ts';

export type ImageFormat = 'png' | 'jpeg';

/** An error a client caused; the app maps `status`/`code` to the JSON error answer. */
export class ClientError extends Error {
  constructor(
    readonly status: 400 | 401 | 404 | 413 | 415 | 422 | 503,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface CodecModules {
  png: WebAssembly.Module;
  jpeg: WebAssembly.Module;
}

let codecsReady: Promise<void> | undefined;

/** Instantiate both codecs from precompiled modules; idempotent. */
export function initCodecs(modules: CodecModules): Promise<void> {
  // mozjpeg reports every corrupt upload on stderr; the client gets the error instead.
  const quiet = { print: () => {}, printErr: () => {} };
  // jsquash's typings omit init's second (Emscripten options) parameter.
  const initJpeg = jpegInit as (m: WebAssembly.Module, o: object) => Promise<void>;
  codecsReady ??= Promise.all([pngInit(modules.png), initJpeg(modules.jpeg, quiet)]).then(() => undefined);
  return codecsReady;
}

export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47 && bytes[4] === 0x0d && bytes[5] === 0x0a && bytes[6] === 0x1a && bytes[7] === 0x0a) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}

const u16 = (b: Uint8Array, i: number) => (b[i]! << 8) | b[i + 1]!;
const u32 = (b: Uint8Array, i: number) => ((b[i]! << 24) >>> 0) + ((b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!);

/** Width and height from the PNG IHDR chunk (always the first chunk). */
function pngSize(b: Uint8Array): { width: number; height: number } {
  if (b.length < 24 || String.fromCharCode(b[12]!, b[13]!, b[14]!, b[15]!) !== 'IHDR') {
    throw new ClientError(400, 'bad_image', 'PNG is truncated or has no IHDR chunk');
  }
  return { width: u32(b, 16), height: u32(b, 20) };
}

/** Width and height from the first JPEG start-of-frame segment, walking segment lengths. */
function jpegSize(b: Uint8Array): { width: number; height: number; components: number } {
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) throw new ClientError(400, 'bad_image', `JPEG is corrupt: no marker at byte ${i}`);
    const marker = b[i + 1]!;
    if (marker === 0xff) { i++; continue; } // fill byte
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { i += 2; continue; }
    const length = u16(b, i + 2);
    if (length < 2) throw new ClientError(400, 'bad_image', `JPEG is corrupt: segment length ${length} at byte ${i}`);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (i + 9 > b.length) break;
      return { width: u16(b, i + 7), height: u16(b, i + 5), components: b[i + 9] ?? 0 };
    }
    if (marker === 0xda || marker === 0xd9) break; // scan data before any frame header
    i += 2 + length;
  }
  throw new ClientError(400, 'bad_image', 'JPEG is truncated or has no frame header (SOF)');
}

export function imageSize(bytes: Uint8Array, format: ImageFormat): { width: number; height: number; components?: number } {
  return format === 'png' ? pngSize(bytes) : jpegSize(bytes);
}

/**
 * Decode PNG or JPEG bytes to an RGBA RawImage. Throws ClientError 400 for undecodable bytes or
 * other formats, 422 when the header's pixel count exceeds `maxPixels`.
 */
export async function decodeImage(bytes: Uint8Array, maxPixels: number, what = 'image'): Promise<RawImage> {
  if (bytes.length === 0) throw new ClientError(400, 'bad_image', `${what} is empty`);
  const format = sniffFormat(bytes);
  if (!format) throw new ClientError(400, 'bad_image', `${what} is neither a PNG nor a JPEG image (checked its first bytes)`);
  const { width, height, components } = imageSize(bytes, format);
  if (width === 0 || height === 0) throw new ClientError(400, 'bad_image', `${what} declares ${width}×${height} pixels`);
  if (width * height > maxPixels) {
    throw new ClientError(422, 'too_many_pixels', `${what} is ${width}×${height} = ${width * height} pixels; the limit is ${maxPixels}`);
  }
  if (!codecsReady) throw new Error('image codecs are not initialised: call initCodecs() first');
  await codecsReady;
  // The codecs take an ArrayBuffer of exactly the image bytes. A copy through the Uint8Array
  // constructor: a Node Buffer's slice() is another view of the same (often pooled) memory.
  const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : new Uint8Array(bytes).buffer;
  let decoded: { data: Uint8ClampedArray; width: number; height: number } | null;
  try {
    if (format === 'png') decoded = await pngDecode(buffer);
    // mozjpeg's build has no CMYK→RGB conversion; jpeg-js has (Adobe transform), and 4-component
    // JPEGs are rare enough that its slower pure-JS decode does not matter.
    else if (components === 4) decoded = jpegJs.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: Math.ceil((maxPixels * 8) / 2 ** 20) + 16 }) as never;
    else decoded = await jpegDecode(buffer);
  } catch (err) {
    throw new ClientError(400, 'bad_image', `${what} is not a decodable ${format.toUpperCase()}: ${(err as Error)?.message ?? err}`);
  }
  if (!decoded || decoded.width !== width || decoded.height !== height || decoded.data.length !== width * height * 4) {
    throw new ClientError(400, 'bad_image', `${what} is not a decodable ${format.toUpperCase()} (decoder returned no or inconsistent pixels)`);
  }
  return { width, height, channels: 4, data: new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, decoded.data.length) };
}
