/** `'...'` for a POSIX shell: the value stays literal (no expansion), single quotes escaped. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
