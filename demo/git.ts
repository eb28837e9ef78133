import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Runs git for the demo's own setup (seeding, cloning, committing), never
 * for the deploy itself: that is the task library's job, as in a real deploy.
 * The operator's git config still applies, so commits turn off what could
 * stop a throwaway commit (signing, hooks) and bring their own identity.
 *
 * @example
 * const sha = await git(workDir, 'rev-parse', 'HEAD');
 */
export async function git(cwd: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('git', args, { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
    return stdout.trim();
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`deploy demo: git ${args.join(' ')} failed in ${cwd}${stderr ? `:\n  ${stderr}` : ''}`, { cause: error });
  }
}

/** `git commit -a`, as the demo's made-up operator, whatever the real one's config asks for. */
export async function commitAll(cwd: string, message: string): Promise<string> {
  await git(cwd, 'add', '-A');
  await git(cwd, '-c', 'user.name=deployfile demo', '-c', 'user.email=demo@deployfile.invalid', '-c', 'commit.gpgsign=false', 'commit', '-q', '--no-verify', '-m', message);
  return git(cwd, 'rev-parse', 'HEAD');
}
