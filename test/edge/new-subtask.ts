/** A subtask model the fixture models do not have, for tests that publish one into a folder a server is serving. */
import { fixtureModel } from '../../scripts/make-fixture-models.ts';

/** "bottoms": Trouser, Dress, Bag, which without it the full model answers. A real ONNX model with random weights. */
export const BOTTOMS = fixtureModel({ id: 'bottoms', subtask: 'bottoms', classes: [1, 3, 8], stages: [4, 'M', 6, 'M'], seed: 4 });
