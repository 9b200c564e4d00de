/**
 * A labelled image set held as one uint8 block. Fashion-MNIST and CIFAR fit in memory
 * (47 MB and 150 MB); loaders stream their files into this shape.
 */
export interface LabelledImages {
  /** Data set id, e.g. `fashion-mnist`. */
  name: string;
  /** Which part: `train`, `val`, `test`. */
  split: string;
  count: number;
  height: number;
  width: number;
  /** 1 (grayscale) or 3 (RGB). */
  channels: 1 | 3;
  /** count × height × width × channels bytes, NHWC, 0–255. */
  images: Uint8Array;
  /** count labels, each in [0, classNames.length). */
  labels: Uint16Array;
  classNames: string[];
}

/** The two splits a compile reads; each checksum joins the cache key of the stages that read its split. */
export interface CompileData {
  train: LabelledImages;
  test: LabelledImages;
  /** sha256 of each split's images and labels. */
  checksums: { train: string; test: string };
}
