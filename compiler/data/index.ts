/** The data-set API the rest of the compiler uses. */
export type { LabelledImages } from './types.ts';
export { DataError } from './errors.ts';
export { loadIdx, readIdxImages, readIdxLabels } from './idx.ts';
export { loadCifar } from './cifar.ts';
export { loadImageFolder, type FolderOptions } from './folder.ts';
export { DatasetNotFoundError, defaultDataDir, loadDataset, loadDatasetWithSource, locateDataset, type DatasetId, type LoadOptions, type Split } from './registry.ts';
export { gather, splitValidation, subsetClasses, take, type ValidationSpec } from './split.ts';
export { DATASET_SOURCES, fetchDataset, FetchError, type FetchableDataset, type FetchOptions } from './fetch.ts';
export { extractTar } from './tar.ts';
