import { runDemo } from '../demo/run-demo.ts';
import { reportFatal } from './report.ts';
import { isInteractive } from './run.ts';

/**
 * `deploy demo [--keep]`: deploys examples/django-site to a throwaway local
 * target (see src/demo/run-demo.ts) and returns the deploy's exit code.
 */
export async function demoCommand(options: Record<string, unknown>): Promise<number> {
  try {
    return await runDemo({ keep: options.keep === true, interactive: isInteractive() });
  } catch (error) {
    // Setting up failed (no git or python3, a full disk): nothing was deployed.
    return reportFatal(error);
  }
}
