/** `facet info`: an architecture's layer table with output shapes, MACs and parameters. */
import { readFileSync } from 'node:fs';
import { type Command, UsageError, parseFlags } from '../command.ts';
import { buildGraph, parseGraphJson, parseShape3 } from '../../graph/arch.ts';
import { countGraph } from '../../graph/count.ts';
import type { Shortcut } from '../../graph/builders.ts';
import type { Graph } from '../../graph/ir.ts';
import { readOnnxSummary } from '../../onnx/export.ts';
import { prunableSpaces } from '../../catro/spaces.ts';

const HELP = `Usage: facet info --arch ARCH [--width W] [--input HxWxC] [--classes K]
                  [--shortcut A|projection] [--head gap|pool2x2|flatten] [--json]
       facet info --graph FILE.json [--json]
       facet info --onnx FILE.onnx [--json]

Prints every layer of the architecture with its output shape (H×W×C), MACs and
parameters, then the totals. MACs count conv and dense layers; parameters count conv and
dense weights and biases and BN γ/β (not running statistics).

  --arch ARCH      resnet20, resnet32, resnet56 (any 6n+2), vgg11/13/16/19, vgg-small
  --width W        channel multiplier (default 1)
  --input HxWxC    input size (default 32x32x3)
  --classes K      output classes (default 10)
  --shortcut S     ResNet shortcut: projection (default) or A (parameter-free)
  --head H         gap (default), pool2x2 (ResNet) or flatten (VGG)
  --graph FILE     a graph saved as JSON (e.g. a pruned model) instead of --arch
  --onnx FILE      summarise an exported model: IR version, opset, producer,
                   metadata (labels, classes, mean, std) and operator counts
  --json           print {arch, macs, params, layers: [...]} as JSON instead

The last line names the layers CATRO can prune (in a ResNet each block's first conv), the names a
subtask's keepRatios and \`facet compile --keep LAYER=R\` take.`;

function onnxInfo(path: string, json: boolean): void {
  let summary;
  try {
    summary = readOnnxSummary(readFileSync(path));
  } catch (err) {
    throw new UsageError(`--onnx ${path}: ${(err as Error).message}`);
  }
  if (json) {
    console.log(JSON.stringify(summary, null, 2));
    return;
  }
  const ops = new Map<string, number>();
  for (const op of summary.ops) ops.set(op, (ops.get(op) ?? 0) + 1);
  const lines = [
    `${path}: ONNX IR ${summary.irVersion}, opset ${summary.opset}, producer ${summary.producerName} ${summary.producerVersion}`,
    ...Object.entries(summary.metadata).map(([k, v]) => `  ${k}: ${v}`),
    `  ops: ${[...ops].map(([op, n]) => `${op}×${n}`).join(', ')}`,
  ];
  console.log(lines.join('\n'));
}

function readGraph(path: string): Graph {
  try {
    return parseGraphJson(readFileSync(path, 'utf8'), `--graph ${path}`);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function graphFromFlags(values: { arch?: string; width?: string; input?: string; classes?: string; shortcut?: string; head?: string }): Graph {
  if (values.shortcut !== undefined && values.shortcut !== 'A' && values.shortcut !== 'projection') {
    throw new UsageError(`--shortcut must be A or projection, got "${values.shortcut}"`);
  }
  const width = positiveNumber('--width', values.width, false);
  const classes = positiveNumber('--classes', values.classes, true) ?? 10;
  try {
    return buildGraph({
      arch: values.arch!,
      width,
      input: values.input === undefined ? [32, 32, 3] : parseShape3(values.input, '--input'),
      classes,
      shortcut: values.shortcut as Shortcut | undefined,
      head: values.head,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function positiveNumber(flag: string, text: string | undefined, integer: boolean): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!(v > 0) || (integer && !Number.isInteger(v))) throw new UsageError(`${flag} must be a positive ${integer ? 'integer' : 'number'}, got "${text}"`);
  return v;
}

const fmtShape = (s: number[]): string => s.join('×');
const fmtInt = (n: number): string => n.toLocaleString('en-US');

export const command: Command = {
  name: 'info',
  summary: 'Show an architecture: layers, output shapes, MACs and parameters',
  help: HELP,
  async run(argv) {
    const { values } = parseFlags({
      args: argv,
      strict: true,
      options: {
        arch: { type: 'string' },
        width: { type: 'string' },
        input: { type: 'string' },
        classes: { type: 'string' },
        shortcut: { type: 'string' },
        head: { type: 'string' },
        graph: { type: 'string' },
        onnx: { type: 'string' },
        json: { type: 'boolean' },
      },
    });
    const sources = ['arch', 'graph', 'onnx'].filter((k) => values[k as 'arch'] !== undefined);
    if (sources.length !== 1) throw new UsageError('give exactly one of --arch (e.g. --arch resnet20), --graph FILE.json or --onnx FILE.onnx');
    if (values.onnx !== undefined) return onnxInfo(values.onnx, values.json === true);
    const graph = values.graph !== undefined ? readGraph(values.graph) : graphFromFlags(values);
    const count = countGraph(graph);
    if (values.json) {
      console.log(JSON.stringify({ arch: graph.arch, macs: count.macs, params: count.params, feature: graph.feature, layers: count.perLayer }, null, 2));
      return;
    }
    const rows = count.perLayer.map((l) => [l.name, l.kind, fmtShape(l.shape), l.macs ? fmtInt(l.macs) : '', l.params ? fmtInt(l.params) : '']);
    const header = ['layer', 'kind', 'output', 'MACs', 'params'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]) => r.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
    const out = [graph.arch, line(header), ...rows.map(line)];
    out.push(`total: ${fmtInt(count.macs)} MACs (${(count.macs / 1e6).toFixed(2)}M), ${fmtInt(count.params)} params (${(count.params / 1e6).toFixed(3)}M)`);
    if (graph.feature) out.push(`feature: ${graph.feature}`);
    // The names a subtask's keepRatios (`facet compile --keep LAYER=R`) may use.
    const prunable = prunableSpaces(graph, 'inner').map((s) => s.id);
    out.push(`prunable (CATRO, inner channels): ${prunable.length ? prunable.join(', ') : 'none'}`);
    console.log(out.join('\n'));
  },
};
