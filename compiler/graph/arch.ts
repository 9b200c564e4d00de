/**
 * Architecture specs as the CLI and configs spell them (`resnet20`, `vgg11`, `vgg-small`,
 * input `28x28x1`) → graphs. One place, so `facet info`, `facet export` and the pipeline
 * build the same graph from the same words.
 */
import { type ResnetHead, type Shortcut, VGG_CONFIGS, VGG_SMALL, resnet, vgg } from './builders.ts';
import type { Graph, Shape3 } from './ir.ts';
import { inferShapes } from './shapes.ts';

export interface ArchSpec {
  /** `resnet<depth>` (depth 6n+2), `vgg11|13|16|19` or `vgg-small`. */
  arch: string;
  width?: number;
  input: Shape3;
  classes: number;
  shortcut?: Shortcut;
  /** ResNets: `gap` or `pool2x2`; VGGs: `gap` or `flatten`. */
  head?: string;
}

/** `HxWxC` (e.g. `28x28x1`, `32×32×3`) → [h, w, c]. */
export function parseShape3(text: string, what = 'input'): Shape3 {
  const parts = text.trim().split(/[x×]/);
  const nums = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
  if (nums.length !== 3 || nums.some((n) => !(n >= 1))) throw new Error(`${what} must look like HxWxC (e.g. 28x28x1), got "${text}"`);
  return nums as Shape3;
}

export function buildGraph(spec: ArchSpec): Graph {
  const { arch, width = 1, input, classes, shortcut, head } = spec;
  const res = /^resnet(\d+)$/.exec(arch);
  if (res) {
    if (head !== undefined && head !== 'gap' && head !== 'pool2x2') throw new Error(`head for ${arch} must be gap or pool2x2, got "${head}"`);
    return resnet({ depth: Number(res[1]), width, input, classes, shortcut, head: head as ResnetHead | undefined });
  }
  const v = /^vgg(\d+|-small)$/.exec(arch);
  if (v) {
    if (shortcut !== undefined) throw new Error(`${arch} has no residual shortcuts; drop the shortcut option`);
    if (head !== undefined && head !== 'gap' && head !== 'flatten') throw new Error(`head for ${arch} must be gap or flatten, got "${head}"`);
    const stages = v[1] === '-small' ? VGG_SMALL : VGG_CONFIGS[Number(v[1]) as keyof typeof VGG_CONFIGS];
    if (!stages) throw new Error(`unknown VGG depth in "${arch}": expected vgg11, vgg13, vgg16, vgg19 or vgg-small`);
    return vgg({ stages, width, input, classes, head: head as 'gap' | 'flatten' | undefined, name: arch });
  }
  throw new Error(`unknown arch "${arch}": expected resnet<6n+2> (resnet20, resnet56, ...), vgg11/13/16/19 or vgg-small`);
}

/**
 * The builder options encoded in a graph's `arch` id (`resnet20-w1-proj-pool2x2`,
 * `vgg11-w0.5-gap`), so a checkpoint that records only the id can be rebuilt given its
 * input size and class count. Throws for ids the builders here did not produce.
 */
export function parseArchId(id: string): Omit<ArchSpec, 'input' | 'classes'> {
  const res = /^(resnet\d+)-w(\d+(?:\.\d+)?)-(A|proj)-(gap|pool2x2)$/.exec(id);
  if (res) return { arch: res[1]!, width: Number(res[2]), shortcut: res[3] === 'A' ? 'A' : 'projection', head: res[4]! };
  const v = /^(vgg(?:11|13|16|19|-small))-w(\d+(?:\.\d+)?)-(gap|flatten)$/.exec(id);
  if (v) return { arch: v[1]!, width: Number(v[2]), head: v[3]! };
  throw new Error(`cannot rebuild a graph from arch id "${id}": expected e.g. resnet20-w1-proj-gap or vgg11-w1-gap (a pruned or custom graph needs its graph JSON)`);
}

/** A graph saved as JSON (e.g. by the pruner), checked by shape inference; `source` names the file in errors. */
export function parseGraphJson(text: string, source: string): Graph {
  let graph: Graph;
  try {
    graph = JSON.parse(text) as Graph;
  } catch (err) {
    throw new Error(`${source}: not JSON: ${(err as Error).message}`);
  }
  if (!graph || typeof graph.arch !== 'string' || !Array.isArray(graph.layers) || typeof graph.output !== 'string') {
    throw new Error(`${source}: not a graph (needs "arch", "layers" and "output")`);
  }
  try {
    inferShapes(graph);
  } catch (err) {
    throw new Error(`${source}: ${(err as Error).message}`);
  }
  return graph;
}
