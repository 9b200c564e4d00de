import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A CLI command: its module exports `command` of this type. */
export interface Command {
  name: string;
  /** One line for `facet --help`. */
  summary: string;
  /** Full text for `facet <name> --help`. */
  help: string;
  /** For commands with subcommands: the text of `facet <name> <sub> --help`, by subcommand. */
  subcommandHelp?: Record<string, string>;
  run(argv: string[]): Promise<void>;
}

/** An error the user caused (bad flag, bad file): printed without a stack, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** `parseArgs` whose errors (unknown flag, missing value) become usage errors. */
export function parseFlags<const T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
