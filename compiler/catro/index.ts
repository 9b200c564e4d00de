/** CATRO channel pruning (docs/catro.md): the public API of compiler/catro. */
export { greedyBudget, ratioBudget, widthsForRatios, type CountMacs, type Widths } from './budget.ts';
export {
  applyPruning,
  baselinePrune,
  calibrationSet,
  catroPrune,
  filterL1Norms,
  measureScatter,
  sampleCalibration,
  truncateToTaps,
  type Budget,
  type CalibrationSet,
  type CatroOptions,
  type PruneResult,
  type Selector,
  type SpaceReport,
  type TapRunner,
  type TapSession,
} from './catro.ts';
export { maskChannels, pruneChannels, restrictClasses, sliceTensor, withWidths } from './prune.ts';
export { recalibrateBatchNorm } from './recalibrate.ts';
export { ScatterAccumulator, sumScatters, type Scatter, type ScatterPooling } from './scatter.ts';
export { DEFAULT_W_EPSILON, selectLayer, traceRatio, type LayerSelection } from './select.ts';
export { analyzeChannelSpaces, prunableSpaces, spaceOfLayer, type ChannelSpace, type PruneMode, type SpaceKind } from './spaces.ts';
