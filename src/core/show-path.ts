/**
 * A path as views show it: as is when it is plain text, else JSON-quoted
 * with its control characters escaped. A file name may hold a newline or an
 * escape sequence (POSIX allows any byte but `/` and NUL); printed raw, it
 * could forge a `[site]` line in the log or repaint the terminal.
 *
 * @example
 * showPath('~/Sites/alleged/static') // => '~/Sites/alleged/static'
 * showPath('a\n[web2] deployed')     // => '"a\\n[web2] deployed"'
 */
export function showPath(path: string): string {
  // C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators.
  return /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(path) ? JSON.stringify(path).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : path;
}
