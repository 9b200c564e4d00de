/** Everything in shared/, for consumers that want one import (edge, browser bundles). */
export * from './image.ts';
export * from './manifest.ts';
export * from './rng.ts';
export * from './labels.ts';
export * from './preprocess.ts';
export * from './degrade.ts';
