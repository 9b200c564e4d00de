/** `facet info`: an architecture's layer table with output shapes, MACs and parameters. */
import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';
import { buildGraph, parseShape3 } from '../../graph/arch.ts';
import { countGraph } from '../../graph/count.ts';
import type { Shortcut } from '../../graph/builders.ts';

const HELP = `Usage: facet info --arch ARCH [--width W] [--input HxWxC] [--classes K]
                  [--shortcut A|projection] [--head gap|pool2x2|flatten] [--json]

Prints every layer of the architecture with its output shape (H×W×C), MACs and
parameters, then the totals. MACs count conv and dense layers; parameters count conv and
dense weights and biases and BN γ/β (not running statistics).

  --arch ARCH      resnet20, resnet32, resnet56 (any 6n+2), vgg11/13/16/19, vgg-small
  --width W        channel multiplier (default 1)
  --input HxWxC    input size (default 32x32x3)
  --classes K      output classes (default 10)
  --shortcut S     ResNet shortcut: projection (default) or A (parameter-free)
  --head H         gap (default), pool2x2 (ResNet) or flatten (VGG)
  --json           print {arch, macs, params, layers: [...]} as JSON instead`;

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
    let values;
    try {
      ({ values } = parseArgs({
        args: argv,
        strict: true,
        options: {
          arch: { type: 'string' },
          width: { type: 'string' },
          input: { type: 'string' },
          classes: { type: 'string' },
          shortcut: { type: 'string' },
          head: { type: 'string' },
          json: { type: 'boolean' },
        },
      }));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (!values.arch) throw new UsageError('--arch is required (e.g. --arch resnet20)');
    if (values.shortcut !== undefined && values.shortcut !== 'A' && values.shortcut !== 'projection') {
      throw new UsageError(`--shortcut must be A or projection, got "${values.shortcut}"`);
    }
    let graph;
    try {
      graph = buildGraph({
        arch: values.arch,
        width: positiveNumber('--width', values.width, false),
        input: values.input === undefined ? [32, 32, 3] : parseShape3(values.input, '--input'),
        classes: positiveNumber('--classes', values.classes, true) ?? 10,
        shortcut: values.shortcut as Shortcut | undefined,
        head: values.head,
      });
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError((err as Error).message);
    }
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
    console.log(out.join('\n'));
  },
};
