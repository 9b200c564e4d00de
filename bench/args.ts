import { ENGINE_FLAGS, engineOptions } from '../compiler/cli/engine-flags.ts';
import { createEngine, type Engine } from '../compiler/engine/index.ts';

/** The value after `--name` in `argv` (`--name value`), or undefined when the flag is absent. */
export function optionValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv[i + 1];
}

/** The engine the shared engine flags (`--engine`, `--threads`, `--provider`, `--replicas`, `--backend`) ask for; default ort. */
export async function engineFromArgv(argv: readonly string[]): Promise<Engine> {
  const values = Object.fromEntries(Object.keys(ENGINE_FLAGS).map((k) => [k, optionValue(argv, k)]));
  return createEngine(engineOptions(values));
}
