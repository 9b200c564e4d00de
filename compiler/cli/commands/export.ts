/** `facet export`: a trained checkpoint → a self-describing ONNX model. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Command, UsageError, parseFlags } from '../command.ts';
import { datasetLabels } from '../../../shared/labels.ts';
import { buildGraph, parseArchId, parseGraphJson, parseShape3 } from '../../graph/arch.ts';
import type { Shortcut } from '../../graph/builders.ts';
import { countGraph } from '../../graph/count.ts';
import { inferShapes } from '../../graph/shapes.ts';
import type { Graph } from '../../graph/ir.ts';
import { exportOnnx } from '../../onnx/export.ts';
import { writeFileAtomic } from '../../train/checkpoint.ts';
import { readParams } from '../../train/loop.ts';

const HELP = `Usage: facet export --checkpoint FILE --out FILE.onnx --input HxWxC
                    (--dataset NAME [--subset I,J,...] | --labels A,B,...)
                    --mean M[,M,M] --std S[,S,S]
                    [--graph FILE.json | --arch ARCH --width W --shortcut S --head H]

Writes an ONNX model (opset 17; input "input" float32 [N, C, H, W] normalised as
(x/255 − mean)/std; output "logits" [N, classes]) with its labels, class indices,
mean and std in the metadata. BN layers are folded into the convolutions.

  --checkpoint FILE  parameters (best.ckpt) or a training state (last.ckpt)
  --out FILE.onnx    written atomically
  --input HxWxC      the model's input size, e.g. 28x28x1
  --dataset NAME     fashion-mnist, mnist, cifar10 or cifar100: labels come from it
  --subset I,J,...   the data set's class indices the model outputs, in output order
                     (default: all classes)
  --labels A,B,...   explicit labels instead of --dataset
  --mean, --std      per-channel normalisation (one value, or one per channel)
  --graph FILE.json  the model graph (needed for pruned graphs); otherwise the graph is
                     rebuilt from the checkpoint's arch id, or from --arch/--width/
                     --shortcut/--head (as in facet info)`;

function numberList(flag: string, text: string | undefined): number[] {
  if (text === undefined) throw new UsageError(`${flag} is required`);
  const values = text.split(',').map((s) => Number(s.trim()));
  if (values.length === 0 || values.some((v) => !Number.isFinite(v) || text.trim() === '')) {
    throw new UsageError(`${flag} must be a comma-separated list of numbers, got "${text}"`);
  }
  return values;
}

function readGraphJson(path: string): Graph {
  try {
    return parseGraphJson(readFileSync(path, 'utf8'), `--graph ${path}`);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export const command: Command = {
  name: 'export',
  summary: 'Export a trained checkpoint to ONNX with labels and normalisation metadata',
  help: HELP,
  async run(argv) {
    const { values } = parseFlags({
      args: argv,
      strict: true,
      options: Object.fromEntries(
        ['checkpoint', 'out', 'input', 'dataset', 'subset', 'labels', 'mean', 'std', 'graph', 'arch', 'width', 'shortcut', 'head'].map((k) => [k, { type: 'string' as const }]),
      ),
    });
    for (const flag of ['checkpoint', 'out', 'input'] as const) if (!values[flag]) throw new UsageError(`--${flag} is required`);
    if (!values.out!.endsWith('.onnx')) throw new UsageError(`--out must end in .onnx, got "${values.out}"`);
    let input;
    try {
      input = parseShape3(values.input!, '--input');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const channels = input[2];
    const perChannel = (flag: string, text: string | undefined): number[] => {
      const v = numberList(flag, text);
      if (v.length === 1) return Array<number>(channels).fill(v[0]!);
      if (v.length !== channels) throw new UsageError(`${flag} needs 1 or ${channels} values (the input has ${channels} channels), got ${v.length}`);
      return v;
    };
    const mean = perChannel('--mean', values.mean);
    const std = perChannel('--std', values.std);

    let labels: string[];
    let classes: number[] | undefined;
    if (values.labels !== undefined) {
      if (values.dataset !== undefined || values.subset !== undefined) throw new UsageError('give either --labels or --dataset [--subset], not both');
      labels = values.labels.split(',').map((s) => s.trim());
      if (labels.some((l) => l === '')) throw new UsageError(`--labels has an empty label: "${values.labels}"`);
    } else if (values.dataset !== undefined) {
      let all: string[];
      try {
        all = datasetLabels(values.dataset);
      } catch (err) {
        throw new UsageError(`--dataset: ${(err as Error).message}`);
      }
      classes = values.subset === undefined ? all.map((_, i) => i) : numberList('--subset', values.subset);
      for (const c of classes) {
        if (!Number.isInteger(c) || c < 0 || c >= all.length) throw new UsageError(`--subset: ${c} is not a class index of ${values.dataset} (0..${all.length - 1})`);
      }
      if (new Set(classes).size !== classes.length) throw new UsageError(`--subset repeats a class: "${values.subset}"`);
      labels = classes.map((c) => all[c]!);
    } else {
      throw new UsageError('labels are required: --dataset NAME [--subset I,J,...] or --labels A,B,...');
    }

    const { params, meta } = readParams(values.checkpoint!);
    let graph: Graph;
    if (values.graph !== undefined) {
      graph = readGraphJson(values.graph);
    } else {
      const fromFlags = values.arch !== undefined;
      let spec;
      try {
        spec = fromFlags
          ? { arch: values.arch!, width: values.width === undefined ? undefined : Number(values.width), shortcut: values.shortcut as Shortcut | undefined, head: values.head }
          : parseArchId(meta.arch);
        // Both builders name the classifier `fc`; its kernel says how many outputs the model has.
        const classCount = params.get('fc/kernel')?.shape[1] ?? labels.length;
        graph = buildGraph({ ...spec, input, classes: classCount });
      } catch (err) {
        throw new UsageError(`${values.checkpoint}: ${(err as Error).message}`);
      }
      if (fromFlags && graph.arch !== meta.arch) {
        throw new UsageError(`${values.checkpoint} holds a ${meta.arch} model, but the flags describe ${graph.arch}`);
      }
    }
    const outputs = inferShapes(graph).get(graph.output)![0]!;
    if (outputs !== labels.length) {
      throw new UsageError(`${values.checkpoint}: the model has ${outputs} outputs, but ${labels.length} labels were given (${values.labels !== undefined ? '--labels' : '--dataset/--subset'})`);
    }
    let bytes: Uint8Array;
    try {
      bytes = exportOnnx(graph, params, { labels, classes, mean, std });
    } catch (err) {
      throw new Error(`${values.checkpoint}: ${(err as Error).message}`);
    }
    writeFileAtomic(values.out!, bytes);
    const { macs, params: count } = countGraph(graph);
    const sha = createHash('sha256').update(bytes).digest('hex');
    console.log(`${values.out}: ${graph.arch}, ${labels.length} classes, ${bytes.length} bytes, ${(macs / 1e6).toFixed(2)}M MACs, ${count} params, sha256 ${sha}`);
  },
};
