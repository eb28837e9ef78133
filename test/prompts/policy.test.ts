import { describe, expect, it } from 'vitest';
import { CommandError } from '../../src/core/errors.ts';
import { PolicyPrompter } from '../../src/prompts/policy.ts';

const failure = () =>
  new CommandError({ command: 'false', composed: 'false', site: 'web1', target: 'deploy@web1:22', where: 'remote', cwd: undefined, stdout: '', stderr: '', exitCode: 1, signal: null, timedOut: false, durationMs: 1, ok: false, failed: true });

describe('the policy prompter (no TTY, CI, --json)', () => {
  it('answers confirm questions with --yes, and says the policy answered', async () => {
    expect(await new PolicyPrompter({ yes: true, onFailure: 'abort' }).confirm({ site: 'web1', question: 'Migrate?' })).toEqual({ answer: true, by: 'policy' });
    expect(await new PolicyPrompter({ yes: false, onFailure: 'abort' }).confirm({ site: 'web1', question: 'Migrate?', default: true })).toEqual({ answer: false, by: 'policy' });
  });

  it('a failed command aborts the site by default, and is skipped with --on-failure continue', async () => {
    expect(await new PolicyPrompter({ yes: false, onFailure: 'abort' }).onFailure({ site: 'web1', error: failure() })).toEqual({ answer: 'abort', by: 'policy' });
    expect(await new PolicyPrompter({ yes: true, onFailure: 'continue' }).onFailure({ site: 'web1', error: failure() })).toEqual({ answer: 'skip', by: 'policy' });
  });
});
