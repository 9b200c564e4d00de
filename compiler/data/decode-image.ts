/**
 * PNG (fast-png) and JPEG (jpeg-js) decoding in Node, to 8-bit RawImages with 1 (gray),
 * 3 (RGB) or 4 (RGBA) channels. Gray PNGs and single-component JPEGs stay 1-channel so a
 * grayscale folder loads as grayscale.
 */
import { convertIndexedToRgb, decode as decodePng, hasPngSignature } from 'fast-png';
import jpeg from 'jpeg-js';
import type { RawImage } from '../../shared/image.ts';

/** Refuse images over this many pixels before decoding them (a data set image never is). */
export const MAX_IMAGE_PIXELS = 64 * 1024 * 1024;

export function decodeImage(bytes: Uint8Array): RawImage {
  if (hasPngSignature(bytes)) return decodePngImage(bytes);
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return decodeJpegImage(bytes);
  throw new Error('not a PNG or JPEG file (unrecognised signature)');
}

function decodePngImage(bytes: Uint8Array): RawImage {
  // IHDR sits at a fixed offset: width and height are bytes 16–23.
  if (bytes.length >= 24) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, 24);
    checkPixels(view.getUint32(16), view.getUint32(20));
  }
  const png = decodePng(bytes);
  const { width, height } = png;
  if (png.palette) {
    const rgb = convertIndexedToRgb(png);
    const channels = rgb.length / (width * height);
    if (channels !== 3 && channels !== 4) throw new Error(`unsupported palette entry size ${channels}`);
    return { width, height, channels, data: rgb };
  }
  const channels = png.channels;
  const samples = width * height * channels;
  let data: Uint8Array;
  if (png.depth === 8) {
    data = png.data instanceof Uint8Array ? png.data : new Uint8Array(png.data);
  } else if (png.depth === 16) {
    data = new Uint8Array(samples);
    for (let i = 0; i < samples; i++) data[i] = png.data[i]! >> 8;
  } else {
    data = unpackLowDepthGray(png.data as Uint8Array, width, height, png.depth);
  }
  // RGBA stays 4-channel for toChannels to composite; gray+alpha has no RawImage form, so
  // composite it here onto black with toChannels' rounding, keeping gray images gray.
  if (channels === 2) {
    const gray = new Uint8Array(width * height);
    for (let i = 0; i < gray.length; i++) gray[i] = Math.floor((data[2 * i]! * data[2 * i + 1]! + 127) / 255);
    return { width, height, channels: 1, data: gray };
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) throw new Error(`unsupported PNG channel count ${channels}`);
  return { width, height, channels, data: data.length === samples ? data : data.subarray(0, samples) };
}

/** 1/2/4-bit gray rows are bit-packed, each row padded to a byte; scale values to 0–255. */
function unpackLowDepthGray(packed: Uint8Array, width: number, height: number, depth: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((width * depth) / 8);
  const max = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const byte = packed[y * rowBytes + (bit >> 3)]!;
      const value = (byte >> (8 - depth - (bit & 7))) & max;
      out[y * width + x] = Math.round((value * 255) / max);
    }
  }
  return out;
}

function decodeJpegImage(bytes: Uint8Array): RawImage {
  const frame = readJpegFrame(bytes);
  if (frame) checkPixels(frame.width, frame.height);
  const { width, height, data } = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: false,
    maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
  });
  if (frame?.components === 1) {
    // jpeg-js replicates a gray component into R, G and B; keep one.
    const gray = new Uint8Array(width * height);
    for (let i = 0; i < gray.length; i++) gray[i] = data[3 * i]!;
    return { width, height, channels: 1, data: gray };
  }
  return { width, height, channels: 3, data };
}

/** Finds the SOFn segment: size and component count without decoding. */
function readJpegFrame(bytes: Uint8Array): { width: number; height: number; components: number } | undefined {
  let at = 2;
  while (at + 9 < bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) { at++; continue; }
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      return {
        height: (bytes[at + 5]! << 8) | bytes[at + 6]!,
        width: (bytes[at + 7]! << 8) | bytes[at + 8]!,
        components: bytes[at + 9]!,
      };
    }
    at += 2 + length;
  }
  return undefined;
}

function checkPixels(width: number, height: number): void {
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new Error(`image is ${width}×${height} = ${width * height} pixels, over the ${MAX_IMAGE_PIXELS} limit`);
  }
}
