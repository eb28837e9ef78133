import { DeployfileError, EXIT, UsageError } from '../core/errors.ts';

/**
 * Print an error that ended the command before any site ran, and return its
 * exit code: 2 for usage and deployfile problems, 1 for the rest.
 */
export function reportFatal(error: unknown, stderr: NodeJS.WritableStream = process.stderr): number {
  if (error instanceof DeployfileError || error instanceof UsageError) {
    stderr.write(`deploy: ${error.message}\n`);
    return EXIT.usage;
  }
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  stderr.write(`deploy: unexpected error: ${text}\n`);
  return EXIT.failed;
}
