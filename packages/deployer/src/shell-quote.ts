/**
 * Quotes one argument for a POSIX shell (sh, bash, dash), so that the remote shell sees it as a
 * single word with no expansion at all: `it's` becomes `'it'\''s'`.
 *
 * Arguments made only of characters no shell treats specially are returned as they are, which
 * keeps remote command lines readable in error messages.
 *
 * @param arg - the argument, exactly as the remote program should receive it
 * @returns the quoted word
 */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}
