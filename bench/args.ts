/** The value after `--name` in `argv` (`--name value`), or undefined when the flag is absent. */
export function optionValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv[i + 1];
}
