import { spawnSync } from 'node:child_process';
import type { Fact } from '../../tasks/read-facts.ts';
import { factsScript } from '../../tasks/read-facts.ts';
import { quote } from '../../src/core/quote.ts';

/**
 * What the server prints for a `readFacts` command whose answers are these:
 * the real script is run by /bin/sh with each command standing in by one
 * that prints its answer, so the fake server speaks the real format.
 *
 * @example c.script('@@deployfile-fact', factsAnswer({ head: { stdout: 'abc\n' } }));
 */
export function factsAnswer(answers: Record<string, Partial<Fact>>): { stdout: string; stderr: string } {
  const stand = Object.fromEntries(
    Object.entries(answers).map(([name, a]) => [name, `printf %s ${quote(a.stdout ?? '')}; printf %s ${quote(a.stderr ?? '')} >&2; exit ${a.exitCode ?? 0}`]),
  );
  const result = spawnSync('/bin/sh', ['-c', factsScript(stand)], { encoding: 'utf8' });
  return { stdout: result.stdout, stderr: result.stderr };
}
