/**
 * Someone can be asked: input comes from a terminal, the stream questions are
 * drawn on is a terminal, and no `CI` variable says otherwise. The one answer
 * to "is someone at the terminal" for the whole CLI; pass the stream the
 * questions go to (stdout for `deploy run`).
 *
 * @example const interactive = someoneAtTerminal() && !options.json;
 */
export function someoneAtTerminal(
  output: { isTTY?: boolean } = process.stdout,
  input: { isTTY?: boolean } = process.stdin,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  return Boolean(input.isTTY && output.isTTY) && !env.CI;
}
