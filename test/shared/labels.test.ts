import { describe, expect, it } from 'vitest';
import { DATASET_LABELS, datasetLabels, isDatasetName } from '../../shared/labels.ts';

describe('labels', () => {
  it('has 10/10/10/100 unique labels', () => {
    expect(Object.fromEntries(Object.entries(DATASET_LABELS).map(([k, v]) => [k, new Set(v).size]))).toEqual({
      'fashion-mnist': 10, mnist: 10, cifar10: 10, cifar100: 100,
    });
  });

  it('uses the canonical Fashion-MNIST and CIFAR-10 names in index order', () => {
    expect(DATASET_LABELS['fashion-mnist'][0]).toBe('T-shirt/top');
    expect(DATASET_LABELS['fashion-mnist'][9]).toBe('Ankle boot');
    expect(DATASET_LABELS.cifar10.indexOf('cat')).toBe(3);
  });

  it('lists CIFAR-100 fine labels in their (alphabetical) index order', () => {
    const fine = DATASET_LABELS.cifar100;
    expect([...fine].sort()).toEqual(fine);
    expect([fine[0], fine[1], fine[58], fine[99]]).toEqual(['apple', 'aquarium_fish', 'pickup_truck', 'worm']);
  });

  it('looks data sets up by name with a clear error', () => {
    expect(isDatasetName('mnist')).toBe(true);
    expect(isDatasetName('toString')).toBe(false);
    expect(datasetLabels('cifar10')).toBe(DATASET_LABELS.cifar10);
    expect(() => datasetLabels('imagenet')).toThrow('unknown data set "imagenet": expected one of fashion-mnist, mnist, cifar10, cifar100');
  });
});

describe('labels are immutable', () => {
  it('throws on attempts to reorder or extend them', () => {
    expect(() => DATASET_LABELS.cifar10.sort()).toThrow(TypeError);
    expect(() => DATASET_LABELS.mnist.push('10')).toThrow(TypeError);
    expect(DATASET_LABELS.cifar10[0]).toBe('airplane');
  });
});
