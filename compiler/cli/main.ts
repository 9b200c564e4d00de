/**
 * `facet` — the compiler's command line. Each command lives in ./commands/<name>.ts and
 * is loaded only when used, so `facet --help` starts fast.
 */
import { pathToFileURL } from 'node:url';
import type { Command } from './command.ts';
import { UsageError } from './command.ts';

const COMMANDS: Record<string, () => Promise<{ command: Command }>> = {
  data: () => import('./commands/data.ts'),
  train: () => import('./commands/train.ts'),
  export: () => import('./commands/export.ts'),
  compile: () => import('./commands/compile.ts'),
  subtasks: () => import('./commands/subtasks.ts'),
  info: () => import('./commands/info.ts'),
  doctor: () => import('./commands/doctor.ts'),
};

async function load(name: string): Promise<Command | undefined> {
  const loader = COMMANDS[name];
  if (!loader) return undefined;
  try {
    return (await loader()).command;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

async function usage(): Promise<string> {
  const lines = ['Usage: facet <command> [options]', '', 'Commands:'];
  for (const name of Object.keys(COMMANDS)) {
    const cmd = await load(name);
    if (cmd) lines.push(`  ${name.padEnd(10)} ${cmd.summary}`);
  }
  lines.push('', 'Run `facet <command> --help` for a command\'s options.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await usage());
    return name ? 0 : 2;
  }
  const cmd = await load(name);
  if (!cmd) {
    console.error(`facet: unknown command "${name}"\n\n${await usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    // `facet data fetch --help` is about fetch; `facet data --help` about all of data.
    console.log(cmd.subcommandHelp?.[rest[0]!] ?? cmd.help);
    return 0;
  }
  try {
    await cmd.run(rest);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`facet ${name}: ${err.message}`);
      return 2;
    }
    console.error(`facet ${name}: ${err instanceof Error ? err.message : String(err)}`);
    if (process.env.FACET_DEBUG) console.error(err);
    return 1;
  }
}

// Run only as the entry point, so tests can import main().
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
