export { DEGRADATION_LEVELS, degrade, degradeBatch, identityLevel, type DegradeOptions } from './degrade/index.ts';
export { jpegRoundTrip, quantTable } from './degrade/jpeg.ts';
export { gaussianKernel } from './degrade/blur.ts';
