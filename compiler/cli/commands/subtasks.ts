/** `facet subtasks list|remove`: what a models folder serves, and taking a subtask out of it. */
import { join } from 'node:path';
import { type Command, UsageError, parseFlags } from '../command.ts';
import type { Manifest, ModelEntry } from '../../../shared/manifest.ts';
import { formatPoints } from '../../pipeline/accuracy.ts';

const LIST_HELP = `Usage: facet subtasks list --models DIR

Print the models of DIR/manifest.json: the full model, then one row per subtask with its
classes, its MACs (and their share of the full model's), its test accuracy (clean / mean over
the four degradations, measured by the compile) and its model file.
  --models DIR   a models folder written by facet compile, e.g. models/fashion-mnist

Add a subtask with facet compile --config FILE --from DIR --subtask NAME=ClassA,ClassB.`;

const REMOVE_HELP = `Usage: facet subtasks remove NAME [NAME...] --models DIR

Remove subtask NAME from the models folder DIR. The manifest without it is committed as
facet compile publishes (written beside the old one, then renamed over it: a reader sees the
set with it or without it, never a mix), then its model file, which no manifest names any
more, is deleted, and its row leaves report.json and report.html. A server serving DIR (Node,
Bun, Deno) switches to the new manifest without a restart; for Workers, npm run deploy ships it.
The full model cannot be removed: it answers every request that no subtask covers.
  --models DIR   the models folder, e.g. models/fashion-mnist`;

const HELP = `Usage:
  facet subtasks list --models DIR           the full model and the subtasks a models folder serves
  facet subtasks remove NAME --models DIR    remove a subtask from a models folder

${LIST_HELP}

${REMOVE_HELP}`;

function modelsDir(argv: string[]): { dir: string; names: string[] } {
  const { values, positionals } = parseFlags({ args: argv, options: { models: { type: 'string' } }, allowPositionals: true, strict: true });
  if (!values.models) throw new UsageError('--models DIR is required: the models folder, e.g. models/fashion-mnist');
  return { dir: values.models, names: positionals };
}

const percent = (v: number) => `${formatPoints(v)}%`;

/** The table `list` prints: one row per model, full model first, columns padded to their widest cell. */
export function subtasksTable(manifest: Manifest): string {
  const full = manifest.models.find((m) => m.subtask === null)!;
  const row = (m: ModelEntry) => [
    m.subtask ?? 'full',
    m.subtask === null ? `all ${m.classes.length} classes` : m.classes.map((c) => c.label).join(', '),
    m.subtask === null ? m.macs.toLocaleString('en') : `${m.macs.toLocaleString('en')} (${percent(m.macs / full.macs)})`,
    m.accuracy ? `${percent(m.accuracy.clean)} / ${percent(m.accuracy.degradedMean)}` : '—',
    m.file,
  ];
  const rows = [['name', 'classes', 'MACs', 'accuracy (clean / degraded)', 'file'], row(full), ...manifest.models.filter((m) => m !== full).map(row)];
  const widths = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
  return rows.map((r) => r.map((cell, j) => (j === r.length - 1 ? cell : cell.padEnd(widths[j]!))).join('  ')).join('\n');
}

async function listCommand(argv: string[]): Promise<void> {
  const { dir, names } = modelsDir(argv);
  if (names.length > 0) throw new UsageError(`list takes no names, got "${names.join(' ')}"`);
  const { readManifest, MANIFEST_FILE } = await import('../../pipeline/publish.ts');
  const manifest = await readManifest(dir);
  if (!manifest) throw new Error(`${join(dir, MANIFEST_FILE)}: missing; is ${dir} a models folder written by facet compile?`);
  const subtasks = manifest.models.length - 1;
  console.log(`${join(dir, MANIFEST_FILE)}: ${manifest.dataset}, the full model and ${subtasks} subtask${subtasks === 1 ? '' : 's'}, created ${manifest.createdAt}\n`);
  console.log(subtasksTable(manifest));
}

async function removeCommand(argv: string[]): Promise<void> {
  const { dir, names } = modelsDir(argv);
  if (names.length === 0) throw new UsageError('remove needs the name of a subtask (see facet subtasks list --models DIR)');
  const { removeSubtasks, SubtaskNameError } = await import('../../pipeline/publish.ts');
  const log = (line: string) => console.error(line);
  let result;
  try {
    result = await removeSubtasks(dir, names, log);
  } catch (err) {
    throw err instanceof SubtaskNameError ? new UsageError(err.message) : err;
  }
  const before = result.manifest.models.length + result.removed.length;
  for (const m of result.removed) console.log(`removed subtask ${m.subtask} (${m.file}) from ${dir}`);
  console.log(`manifest: ${before} → ${result.manifest.models.length} models. Wrote ${result.files.join(', ')}`);
}

export const command: Command = {
  name: 'subtasks',
  summary: 'List the subtasks of a models folder, or remove one (atomically, as a compile publishes)',
  help: HELP,
  subcommandHelp: { list: LIST_HELP, remove: REMOVE_HELP },
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'list') return listCommand(rest);
    if (sub === 'remove') return removeCommand(rest);
    throw new UsageError(sub ? `unknown subcommand "${sub}": expected list or remove` : 'expected a subcommand: list or remove (see facet subtasks --help)');
  },
};
