/** What one request may cost the service; `createApp`'s `limits` option overrides any of them. */
export interface Limits {
  /** Request body bytes (bodyLimit; checked before and while reading). */
  maxBodyBytes: number;
  /** Pixels per image, read from the header before decoding. */
  maxPixels: number;
  /** Images per batch request. */
  maxBatch: number;
  /** Images per onnxruntime run; bounds the wasm heap a batch can grow. */
  maxRunBatch: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 8 * 2 ** 20,
  maxPixels: 4096 * 4096,
  maxBatch: 32,
  maxRunBatch: 8,
};
