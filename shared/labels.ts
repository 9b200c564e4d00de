/**
 * Canonical class names of the built-in data sets, by class index, as the data sets'
 * own metadata files spell them (CIFAR: batches.meta / meta "fine_label_names").
 */

export type DatasetName = 'fashion-mnist' | 'mnist' | 'cifar10' | 'cifar100';

const CIFAR100_FINE = (
  'apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly ' +
  'camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup ' +
  'dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower ' +
  'leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid ' +
  'otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road ' +
  'rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower ' +
  'sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale ' +
  'willow_tree wolf woman worm'
).split(' ');

/** Frozen (the arrays too): a stray sort() or push() must not reorder every model's classes. */
export const DATASET_LABELS: Record<DatasetName, string[]> = deepFreeze({
  'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  mnist: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  cifar10: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
  cifar100: CIFAR100_FINE,
});

function deepFreeze<T extends Record<string, string[]>>(sets: T): T {
  for (const labels of Object.values(sets)) Object.freeze(labels);
  return Object.freeze(sets);
}

export function isDatasetName(name: string): name is DatasetName {
  return Object.hasOwn(DATASET_LABELS, name);
}

/** Labels of a built-in data set; throws naming the known sets otherwise. */
export function datasetLabels(name: string): string[] {
  if (!isDatasetName(name)) {
    throw new Error(`unknown data set "${name}": expected one of ${Object.keys(DATASET_LABELS).join(', ')}`);
  }
  return DATASET_LABELS[name];
}
