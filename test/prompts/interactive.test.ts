import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { CommandError } from '../../src/core/errors.ts';
import { queuedAsker, type Asker } from '../../src/prompts/asker.ts';
import { InteractivePrompter } from '../../src/prompts/interactive.ts';
import { createQuestionQueue } from '../../src/prompts/queue.ts';

const failure = (site: string) =>
  new CommandError({ command: 'false', composed: 'false', site, target: `deploy@${site}:22`, where: 'remote', cwd: undefined, stdout: '', stderr: '', exitCode: 1, signal: null, timedOut: false, durationMs: 1, ok: false, failed: true });

function scriptedAsker(choice: string, log: string[], ms = 10): Asker {
  const ask = async <T>(site: string | null, message: string, answer: T): Promise<T> => {
    log.push(`${site}: ${message.split('\n')[0]}`);
    await sleep(ms);
    return answer;
  };
  return {
    select: (site, message) => ask(site, message, choice as never),
    confirm: (site, message) => ask(site, message, true),
    secret: (site, message) => ask(site, message, ''),
  };
}

describe('the interactive prompter', () => {
  it('--yes answers confirm questions without asking', async () => {
    const log: string[] = [];
    const prompter = new InteractivePrompter(scriptedAsker('retry', log), { yes: true });
    expect(await prompter.confirm({ site: 'web1', question: 'Migrate?' })).toEqual({ answer: true, by: 'policy' });
    expect(log).toEqual([]);
  });

  it('"abort all sites" answers the failures queued behind it and tells the run once', async () => {
    const log: string[] = [];
    let aborts = 0;
    const prompter = new InteractivePrompter(scriptedAsker('abort-all', log), { onAbortAll: () => aborts++ });
    const answers = await Promise.all(['web1', 'web2', 'web3'].map((site) => prompter.onFailure({ site, error: failure(site) })));
    expect(answers).toEqual(Array(3).fill({ answer: 'abort', by: 'user' }));
    expect(log).toHaveLength(1);
    expect(aborts).toBe(1);
  });

  it('shares the run queue: a host key question asked meanwhile waits for the failure question, and the reverse', async () => {
    const log: string[] = [];
    const questions = createQuestionQueue();
    const asker = queuedAsker(scriptedAsker('skip', log, 20), questions);
    const prompter = new InteractivePrompter(asker, { queue: questions });
    const failed = prompter.onFailure({ site: 'web1', error: failure('web1') });
    const hostKey = asker.confirm('web2', 'Trust the host key of web2?', false);
    const confirmed = prompter.confirm({ site: 'web3', question: 'Migrate?' });
    expect(await failed).toEqual({ answer: 'skip', by: 'user' });
    expect(await hostKey).toBe(true);
    expect(await confirmed).toEqual({ answer: true, by: 'user' });
    expect(log[0]).toMatch(/^web1: Command failed with exit code 1 on web1/);
    expect(log.slice(1)).toEqual(['web2: Trust the host key of web2?', 'web3: Migrate?']);
  });
});
