/**
 * JPEG compression as a degradation: the lossy half of a baseline JPEG encode + decode,
 * done the way libjpeg(-turbo) does it with the settings PIL uses for `im.save(f, 'JPEG',
 * quality=q)` followed by `Image.open(f)`:
 *   encode: RGB→YCbCr (jccolor.c fixed point), 4:2:0 chroma by 2×2 averaging with libjpeg's
 *           alternating 1/2 bias, edge-replicated to whole blocks, islow integer forward DCT
 *           (jfdctint.c), quantization with the IJG quality scaling of the standard tables
 *           (baseline: entries clamped to 1..255);
 *   decode: dequantize, islow integer inverse DCT (jidctint.c) with libjpeg's range limit,
 *           "fancy" triangular 4:2:0 upsampling (jdsample.c), YCbCr→RGB (jdcolor.c).
 * Grayscale is one-component JPEG (PIL mode 'L'). Huffman coding is lossless, so skipping
 * the bitstream yields the same pixels as a real encode + decode, much faster; the
 * reference test compares against PIL/libjpeg-turbo pixel by pixel.
 */

const STD_LUMA_QT = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51,
  87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101,
  72, 92, 95, 98, 112, 100, 103, 99,
];
const STD_CHROMA_QT = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99,
  99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
  99, 99, 99, 99, 99, 99,
];

/** Quantization table (natural row-major order) for IJG quality 1..100, baseline-clamped. */
export function quantTable(quality: number, chroma: boolean): Int32Array {
  const q = Math.min(100, Math.max(1, quality));
  const scale = q < 50 ? Math.trunc(5000 / q) : 200 - q * 2;
  const base = chroma ? STD_CHROMA_QT : STD_LUMA_QT;
  const t = new Int32Array(64);
  for (let i = 0; i < 64; i++) t[i] = Math.min(255, Math.max(1, Math.trunc((base[i]! * scale + 50) / 100)));
  return t;
}

const FIX_0_298631336 = 2446;
const FIX_0_390180644 = 3196;
const FIX_0_541196100 = 4433;
const FIX_0_765366865 = 6270;
const FIX_0_899976223 = 7373;
const FIX_1_175875602 = 9633;
const FIX_1_501321110 = 12299;
const FIX_1_847759065 = 15137;
const FIX_1_961570560 = 16069;
const FIX_2_053119869 = 16819;
const FIX_2_562915447 = 20995;
const FIX_3_072711026 = 25172;
const CONST_BITS = 13;
const PASS1_BITS = 2;

/** libjpeg's IDCT output clamp: index (x & 1023) for a centered sample x (jdmaster.c). */
const IDCT_LIMIT = (() => {
  const t = new Uint8Array(1024);
  for (let x = 0; x < 1024; x++) {
    const v = x < 512 ? x : x - 1024; // the masked index wraps like libjpeg's table
    t[x] = Math.min(255, Math.max(0, v + 128));
  }
  // libjpeg's table maps 384..511 and beyond to 255 and −512..−129 to 0, which the clamp gives.
  return t;
})();

/** In-place islow forward DCT of 64 centered samples (jfdctint.c); output is 8× the DCT. */
function fdctIslow(d: Int32Array): void {
  for (let r = 0; r < 64; r += 8) {
    const tmp0 = d[r]! + d[r + 7]!, tmp7 = d[r]! - d[r + 7]!;
    const tmp1 = d[r + 1]! + d[r + 6]!, tmp6 = d[r + 1]! - d[r + 6]!;
    const tmp2 = d[r + 2]! + d[r + 5]!, tmp5 = d[r + 2]! - d[r + 5]!;
    const tmp3 = d[r + 3]! + d[r + 4]!, tmp4 = d[r + 3]! - d[r + 4]!;
    const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
    d[r] = (tmp10 + tmp11) << PASS1_BITS;
    d[r + 4] = (tmp10 - tmp11) << PASS1_BITS;
    const z1 = (tmp12 + tmp13) * FIX_0_541196100;
    const s1 = CONST_BITS - PASS1_BITS, h1 = 1 << (s1 - 1);
    d[r + 2] = (z1 + tmp13 * FIX_0_765366865 + h1) >> s1;
    d[r + 6] = (z1 - tmp12 * FIX_1_847759065 + h1) >> s1;
    const z5 = (tmp4 + tmp6 + tmp5 + tmp7) * FIX_1_175875602;
    const o1 = -(tmp4 + tmp7) * FIX_0_899976223, o2 = -(tmp5 + tmp6) * FIX_2_562915447;
    const o3 = -(tmp4 + tmp6) * FIX_1_961570560 + z5, o4 = -(tmp5 + tmp7) * FIX_0_390180644 + z5;
    d[r + 7] = (tmp4 * FIX_0_298631336 + o1 + o3 + h1) >> s1;
    d[r + 5] = (tmp5 * FIX_2_053119869 + o2 + o4 + h1) >> s1;
    d[r + 3] = (tmp6 * FIX_3_072711026 + o2 + o3 + h1) >> s1;
    d[r + 1] = (tmp7 * FIX_1_501321110 + o1 + o4 + h1) >> s1;
  }
  const s2 = CONST_BITS + PASS1_BITS, h2 = 1 << (s2 - 1), hp = 1 << (PASS1_BITS - 1);
  for (let c = 0; c < 8; c++) {
    const tmp0 = d[c]! + d[c + 56]!, tmp7 = d[c]! - d[c + 56]!;
    const tmp1 = d[c + 8]! + d[c + 48]!, tmp6 = d[c + 8]! - d[c + 48]!;
    const tmp2 = d[c + 16]! + d[c + 40]!, tmp5 = d[c + 16]! - d[c + 40]!;
    const tmp3 = d[c + 24]! + d[c + 32]!, tmp4 = d[c + 24]! - d[c + 32]!;
    const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
    d[c] = (tmp10 + tmp11 + hp) >> PASS1_BITS;
    d[c + 32] = (tmp10 - tmp11 + hp) >> PASS1_BITS;
    const z1 = (tmp12 + tmp13) * FIX_0_541196100;
    d[c + 16] = (z1 + tmp13 * FIX_0_765366865 + h2) >> s2;
    d[c + 48] = (z1 - tmp12 * FIX_1_847759065 + h2) >> s2;
    const z5 = (tmp4 + tmp6 + tmp5 + tmp7) * FIX_1_175875602;
    const o1 = -(tmp4 + tmp7) * FIX_0_899976223, o2 = -(tmp5 + tmp6) * FIX_2_562915447;
    const o3 = -(tmp4 + tmp6) * FIX_1_961570560 + z5, o4 = -(tmp5 + tmp7) * FIX_0_390180644 + z5;
    d[c + 56] = (tmp4 * FIX_0_298631336 + o1 + o3 + h2) >> s2;
    d[c + 40] = (tmp5 * FIX_2_053119869 + o2 + o4 + h2) >> s2;
    d[c + 24] = (tmp6 * FIX_3_072711026 + o2 + o3 + h2) >> s2;
    d[c + 8] = (tmp7 * FIX_1_501321110 + o1 + o4 + h2) >> s2;
  }
}

/**
 * A quantization table with libjpeg-turbo's reciprocal divisors (jcdctmgr.c
 * compute_reciprocal, 16-bit DCTELEM as in its SIMD builds): quantizing is
 * ⌊(|v| + corr) · recip / 2^shift⌋, which is what libjpeg-turbo computes, and differs
 * from exact rounding division for a few values.
 */
interface Quantizer {
  q: Int32Array;
  recip: Float64Array;
  corr: Float64Array;
  scale: Float64Array; // 2^-shift
}

function makeQuantizer(qt: Int32Array): Quantizer {
  const recip = new Float64Array(64), corr = new Float64Array(64), scale = new Float64Array(64);
  for (let i = 0; i < 64; i++) {
    const divisor = qt[i]! << 3; // islow forward DCT output is 8× the true coefficients
    const b = 31 - Math.clz32(divisor);
    let r = 16 + b;
    let fq = Math.floor(2 ** r / divisor);
    const fr = 2 ** r % divisor;
    let c = divisor >> 1;
    if (fr === 0) {
      fq = Math.floor(fq / 2);
      r--;
    } else if (fr <= divisor >> 1) c++;
    else fq++;
    recip[i] = fq;
    corr[i] = c;
    scale[i] = 2 ** -r;
  }
  return { q: qt, recip, corr, scale };
}

/** Quantize then dequantize in place. */
function quantizeRoundTrip(d: Int32Array, qz: Quantizer): void {
  for (let i = 0; i < 64; i++) {
    const v = d[i]!;
    const mag = Math.floor(((v < 0 ? -v : v) + qz.corr[i]!) * qz.recip[i]! * qz.scale[i]!);
    d[i] = (v < 0 ? -mag : mag) * qz.q[i]!;
  }
}

/** In-place islow inverse DCT (jidctint.c): dequantized coefficients → samples 0..255. */
function idctIslow(d: Int32Array, ws: Int32Array): void {
  const s1 = CONST_BITS - PASS1_BITS, h1 = 1 << (s1 - 1);
  for (let c = 0; c < 8; c++) {
    let z2 = d[c + 16]!, z3 = d[c + 48]!;
    let z1 = (z2 + z3) * FIX_0_541196100;
    const tmp2e = z1 - z3 * FIX_1_847759065;
    const tmp3e = z1 + z2 * FIX_0_765366865;
    z2 = d[c]!;
    z3 = d[c + 32]!;
    const tmp0e = (z2 + z3) * 8192, tmp1e = (z2 - z3) * 8192;
    const tmp10 = tmp0e + tmp3e, tmp13 = tmp0e - tmp3e, tmp11 = tmp1e + tmp2e, tmp12 = tmp1e - tmp2e;
    let t0 = d[c + 56]!, t1 = d[c + 40]!, t2 = d[c + 24]!, t3 = d[c + 8]!;
    const z5 = (t0 + t2 + t1 + t3) * FIX_1_175875602;
    z1 = -(t0 + t3) * FIX_0_899976223;
    z2 = -(t1 + t2) * FIX_2_562915447;
    z3 = -(t0 + t2) * FIX_1_961570560 + z5;
    const z4 = -(t1 + t3) * FIX_0_390180644 + z5;
    t0 = t0 * FIX_0_298631336 + z1 + z3;
    t1 = t1 * FIX_2_053119869 + z2 + z4;
    t2 = t2 * FIX_3_072711026 + z2 + z3;
    t3 = t3 * FIX_1_501321110 + z1 + z4;
    ws[c] = (tmp10 + t3 + h1) >> s1;
    ws[c + 56] = (tmp10 - t3 + h1) >> s1;
    ws[c + 8] = (tmp11 + t2 + h1) >> s1;
    ws[c + 48] = (tmp11 - t2 + h1) >> s1;
    ws[c + 16] = (tmp12 + t1 + h1) >> s1;
    ws[c + 40] = (tmp12 - t1 + h1) >> s1;
    ws[c + 24] = (tmp13 + t0 + h1) >> s1;
    ws[c + 32] = (tmp13 - t0 + h1) >> s1;
  }
  const s2 = CONST_BITS + PASS1_BITS + 3, h2 = 1 << (s2 - 1);
  for (let r = 0; r < 64; r += 8) {
    let z2 = ws[r + 2]!, z3 = ws[r + 6]!;
    let z1 = (z2 + z3) * FIX_0_541196100;
    const tmp2e = z1 - z3 * FIX_1_847759065;
    const tmp3e = z1 + z2 * FIX_0_765366865;
    const tmp0e = (ws[r]! + ws[r + 4]!) * 8192, tmp1e = (ws[r]! - ws[r + 4]!) * 8192;
    const tmp10 = tmp0e + tmp3e, tmp13 = tmp0e - tmp3e, tmp11 = tmp1e + tmp2e, tmp12 = tmp1e - tmp2e;
    let t0 = ws[r + 7]!, t1 = ws[r + 5]!, t2 = ws[r + 3]!, t3 = ws[r + 1]!;
    const z5 = (t0 + t2 + t1 + t3) * FIX_1_175875602;
    z1 = -(t0 + t3) * FIX_0_899976223;
    z2 = -(t1 + t2) * FIX_2_562915447;
    z3 = -(t0 + t2) * FIX_1_961570560 + z5;
    const z4 = -(t1 + t3) * FIX_0_390180644 + z5;
    t0 = t0 * FIX_0_298631336 + z1 + z3;
    t1 = t1 * FIX_2_053119869 + z2 + z4;
    t2 = t2 * FIX_3_072711026 + z2 + z3;
    t3 = t3 * FIX_1_501321110 + z1 + z4;
    d[r] = IDCT_LIMIT[((tmp10 + t3 + h2) >> s2) & 1023]!;
    d[r + 7] = IDCT_LIMIT[((tmp10 - t3 + h2) >> s2) & 1023]!;
    d[r + 1] = IDCT_LIMIT[((tmp11 + t2 + h2) >> s2) & 1023]!;
    d[r + 6] = IDCT_LIMIT[((tmp11 - t2 + h2) >> s2) & 1023]!;
    d[r + 2] = IDCT_LIMIT[((tmp12 + t1 + h2) >> s2) & 1023]!;
    d[r + 5] = IDCT_LIMIT[((tmp12 - t1 + h2) >> s2) & 1023]!;
    d[r + 3] = IDCT_LIMIT[((tmp13 + t0 + h2) >> s2) & 1023]!;
    d[r + 4] = IDCT_LIMIT[((tmp13 - t0 + h2) >> s2) & 1023]!;
  }
}

/**
 * Compress + decompress one plane in place. `plane` is blocksW·8 × blocksH·8, already
 * edge-padded by the caller the way libjpeg pads that component.
 */
const blk = new Int32Array(64);
const ws = new Int32Array(64);

function roundTripPlane(plane: Uint8Array, stride: number, blocksW: number, blocksH: number, qt: Quantizer): void {
  for (let by = 0; by < blocksH; by++) {
    for (let bx = 0; bx < blocksW; bx++) {
      const o = by * 8 * stride + bx * 8;
      for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) blk[y * 8 + x] = plane[o + y * stride + x]! - 128;
      fdctIslow(blk);
      quantizeRoundTrip(blk, qt);
      idctIslow(blk, ws);
      for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) plane[o + y * stride + x] = blk[y * 8 + x]!;
    }
  }
}

const ceilDiv = (a: number, b: number) => Math.floor((a + b - 1) / b);

/** Scratch planes, grown on demand and reused: batches are degraded image by image. */
const scratch: Record<'luma' | 'cb' | 'cr' | 'y' | 'cbP' | 'crP', Uint8Array> = {
  luma: new Uint8Array(0), cb: new Uint8Array(0), cr: new Uint8Array(0), y: new Uint8Array(0), cbP: new Uint8Array(0), crP: new Uint8Array(0),
};
function buf(name: keyof typeof scratch, size: number): Uint8Array {
  if (scratch[name].length < size) scratch[name] = new Uint8Array(size);
  return scratch[name];
}
let upCb = new Uint16Array(0), upCr = new Uint16Array(0);

/** One-component (grayscale) JPEG round trip of a w×h plane read with a channel stride. */
function grayRoundTrip(src: Uint8Array, dst: Uint8Array, w: number, h: number, step: number, qt: Quantizer): void {
  const bw = ceilDiv(w, 8), bh = ceilDiv(h, 8), stride = bw * 8;
  const plane = buf('y', stride * bh * 8);
  for (let y = 0; y < bh * 8; y++) {
    const sy = Math.min(y, h - 1);
    for (let x = 0; x < stride; x++) plane[y * stride + x] = src[(sy * w + Math.min(x, w - 1)) * step]!;
  }
  roundTripPlane(plane, stride, bw, bh, qt);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) dst[(y * w + x) * step] = plane[y * stride + x]!;
}

// jccolor.c / jdcolor.c fixed-point constants (SCALEBITS = 16).
const FIX = (x: number) => Math.trunc(x * 65536 + 0.5);
const ONE_HALF = 1 << 15;
const CR_R = new Int32Array(256), CB_B = new Int32Array(256), CR_G = new Int32Array(256), CB_G = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  CR_R[i] = (FIX(1.402) * x + ONE_HALF) >> 16;
  CB_B[i] = (FIX(1.772) * x + ONE_HALF) >> 16;
  CR_G[i] = -FIX(0.71414) * x;
  CB_G[i] = -FIX(0.34414) * x + ONE_HALF;
}
const clamp255 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);
const F_Y1 = FIX(0.299), F_Y2 = FIX(0.587), F_Y3 = FIX(0.114);
const F_CB1 = FIX(0.16874), F_CB2 = FIX(0.33126), F_HALF = FIX(0.5), F_CR2 = FIX(0.41869), F_CR3 = FIX(0.08131);
const CBCR_OFF = (128 << 16) + ONE_HALF - 1;

/** 2×2 mean with bias 1,2,1,2… (jcsample.c h2v2_downsample); rows past `ch` repeat the last. */
function downsample(full: Uint8Array, fullW: number, p: Uint8Array, cStride: number, ch: number, cRows: number): void {
  for (let cy = 0; cy < ch; cy++) {
    const r0 = cy * 2 * fullW, r1 = r0 + fullW, o = cy * cStride;
    for (let cx = 0, x = 0; cx < cStride; cx++, x += 2) {
      p[o + cx] = (full[r0 + x]! + full[r0 + x + 1]! + full[r1 + x]! + full[r1 + x + 1]! + 1 + (cx & 1)) >> 2;
    }
  }
  for (let cy = ch; cy < cRows; cy++) p.copyWithin(cy * cStride, (ch - 1) * cStride, ch * cStride);
}

/**
 * Fancy upsampling (jdsample.c h2v2_fancy_upsample) of a cw×ch plane into a (2cw)×(2ch)
 * one; rows outside 0..ch−1 repeat the edge row. libjpeg-turbo falls back to pixel
 * replication when the chroma is ≤ 2 samples wide.
 */
function upsample(p: Uint8Array, cStride: number, cw: number, ch: number, out: Uint16Array): void {
  const upW = cw * 2;
  if (cw <= 2) {
    for (let y = 0; y < ch * 2; y++) for (let x = 0; x < upW; x++) out[y * upW + x] = p[(y >> 1) * cStride + (x >> 1)]!;
    return;
  }
  for (let cy = 0; cy < ch; cy++) {
    const near = cy * cStride;
    for (let v = 0; v < 2; v++) {
      const far = (v === 0 ? Math.max(cy - 1, 0) : Math.min(cy + 1, ch - 1)) * cStride;
      let o = (cy * 2 + v) * upW;
      let last = p[near]! * 3 + p[far]!;
      let cur = last;
      let next = p[near + 1]! * 3 + p[far + 1]!;
      out[o++] = (cur * 4 + 8) >> 4;
      out[o++] = (cur * 3 + next + 7) >> 4;
      last = cur;
      cur = next;
      for (let cx = 1; cx < cw - 1; cx++) {
        next = p[near + cx + 1]! * 3 + p[far + cx + 1]!;
        out[o++] = (cur * 3 + last + 8) >> 4;
        out[o++] = (cur * 3 + next + 7) >> 4;
        last = cur;
        cur = next;
      }
      out[o++] = (cur * 3 + last + 8) >> 4;
      out[o] = (cur * 4 + 7) >> 4;
    }
  }
}

/** Three-component YCbCr 4:2:0 JPEG round trip of the RGB samples of an image with `step` channels. */
function colorRoundTrip(src: Uint8Array, dst: Uint8Array, w: number, h: number, step: number, qtY: Quantizer, qtC: Quantizer): void {
  const cw = ceilDiv(w, 2), ch = ceilDiv(h, 2);
  const cbw = ceilDiv(cw, 8), cbh = ceilDiv(ch, 8);
  // Full-resolution planes, edge-replicated to the chroma's padded width × 2 (jcsample.c
  // expand_right_edge) and down to the last row group / luma block row (jcprepct.c).
  const fullW = cbw * 16, fullRows = ch * 2;
  const yBw = ceilDiv(w, 8), yBh = ceilDiv(h, 8), yStride = yBw * 8;
  const rows = Math.max(fullRows, yBh * 8);
  const luma = buf('luma', fullW * rows), cbF = buf('cb', fullW * fullRows), crF = buf('cr', fullW * fullRows);
  for (let y = 0; y < h; y++) {
    const o = y * fullW;
    for (let x = 0, s = y * w * step; x < w; x++, s += step) {
      const r = src[s]!, g = src[s + 1]!, b = src[s + 2]!;
      luma[o + x] = (F_Y1 * r + F_Y2 * g + F_Y3 * b + ONE_HALF) >> 16;
      cbF[o + x] = (-F_CB1 * r - F_CB2 * g + F_HALF * b + CBCR_OFF) >> 16;
      crF[o + x] = (F_HALF * r - F_CR2 * g - F_CR3 * b + CBCR_OFF) >> 16;
    }
    luma.fill(luma[o + w - 1]!, o + w, o + fullW);
    cbF.fill(cbF[o + w - 1]!, o + w, o + fullW);
    crF.fill(crF[o + w - 1]!, o + w, o + fullW);
  }
  for (let y = h; y < rows; y++) {
    luma.copyWithin(y * fullW, (h - 1) * fullW, h * fullW);
    if (y < fullRows) {
      cbF.copyWithin(y * fullW, (h - 1) * fullW, h * fullW);
      crF.copyWithin(y * fullW, (h - 1) * fullW, h * fullW);
    }
  }
  const yPlane = buf('y', yStride * yBh * 8);
  for (let y = 0; y < yBh * 8; y++) yPlane.set(luma.subarray(y * fullW, y * fullW + yStride), y * yStride);
  roundTripPlane(yPlane, yStride, yBw, yBh, qtY);

  const cStride = cbw * 8, cRows = cbh * 8, upW = cw * 2;
  if (upCb.length < upW * ch * 2) {
    upCb = new Uint16Array(upW * ch * 2);
    upCr = new Uint16Array(upW * ch * 2);
  }
  const cbP = buf('cbP', cStride * cRows), crP = buf('crP', cStride * cRows);
  downsample(cbF, fullW, cbP, cStride, ch, cRows);
  downsample(crF, fullW, crP, cStride, ch, cRows);
  roundTripPlane(cbP, cStride, cbw, cbh, qtC);
  roundTripPlane(crP, cStride, cbw, cbh, qtC);
  upsample(cbP, cStride, cw, ch, upCb);
  upsample(crP, cStride, cw, ch, upCr);

  for (let y = 0; y < h; y++) {
    for (let x = 0, d = y * w * step; x < w; x++, d += step) {
      const yy = yPlane[y * yStride + x]!;
      const cb = upCb[y * upW + x]!, cr = upCr[y * upW + x]!;
      dst[d] = clamp255(yy + CR_R[cr]!);
      dst[d + 1] = clamp255(yy + ((CB_G[cb]! + CR_G[cr]!) >> 16));
      dst[d + 2] = clamp255(yy + CB_B[cb]!);
    }
  }
}

/**
 * JPEG round trip at IJG quality 1..100 of interleaved uint8 samples with 1, 3 or 4
 * channels (4: RGB is compressed, alpha is copied unchanged). Writes into `dst`.
 */
export function jpegRoundTrip(src: Uint8Array, dst: Uint8Array, w: number, h: number, channels: number, quality: number): void {
  if (channels === 1) {
    grayRoundTrip(src, dst, w, h, 1, lumaTable(quality));
    return;
  }
  colorRoundTrip(src, dst, w, h, channels, lumaTable(quality), chromaTable(quality));
  if (channels === 4) for (let i = 3; i < w * h * 4; i += 4) dst[i] = src[i]!;
}

// Quantizers are cached per quality: the trainer degrades thousands of images per second.
const lumaCache = new Map<number, Quantizer>();
const chromaCache = new Map<number, Quantizer>();
function lumaTable(q: number): Quantizer {
  let t = lumaCache.get(q);
  if (!t) lumaCache.set(q, (t = makeQuantizer(quantTable(q, false))));
  return t;
}
function chromaTable(q: number): Quantizer {
  let t = chromaCache.get(q);
  if (!t) chromaCache.set(q, (t = makeQuantizer(quantTable(q, true))));
  return t;
}
