/**
 * A data file that cannot be used: missing, malformed, truncated, or inconsistent with its
 * partner file. The message always starts with the file's path so the user knows which one.
 */
export class DataError extends Error {
  override name = 'DataError';
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}
