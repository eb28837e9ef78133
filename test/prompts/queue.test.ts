import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { queuedAsker, type Asker } from '../../src/prompts/asker.ts';
import { createQuestionQueue } from '../../src/prompts/queue.ts';

/** A display that records each question, answers after `ms`, and counts how many were on screen at once. */
function recordingDisplay(ms = 15) {
  const shown: string[] = [];
  const answered: string[] = [];
  let open = 0;
  let peak = 0;
  const show = async <T>(site: string | null, message: string, answer: T): Promise<T> => {
    open++;
    peak = Math.max(peak, open);
    shown.push(`${site}: ${message}`);
    await sleep(ms);
    open--;
    answered.push(`${site}: ${message}`);
    return answer;
  };
  const display: Asker = {
    select: (site, message, choices) => show(site, message, choices[0]!.value),
    confirm: (site, message) => show(site, message, true),
    secret: (site, message) => show(site, message, `secret for ${site}`),
  };
  return { display, shown, answered, peak: () => peak };
}

describe('the one question queue', () => {
  it('two sites asking at once: one question on screen at a time, both answered, in the order asked', async () => {
    const { display, shown, answered, peak } = recordingDisplay();
    const asker = queuedAsker(display, createQuestionQueue());
    const [a, b] = await Promise.all([asker.confirm('web1', 'Migrate?', false), asker.secret('web2', 'sudo password:')]);
    expect(a).toBe(true);
    expect(b).toBe('secret for web2');
    expect(peak()).toBe(1);
    expect(shown).toEqual(['web1: Migrate?', 'web2: sudo password:']);
    expect(answered).toEqual(shown);
  });

  it('a turn taken inside a turn runs at once instead of waiting for itself (a host key check asking its question)', async () => {
    const questions = createQuestionQueue();
    const { display, shown, peak } = recordingDisplay();
    const asker = queuedAsker(display, questions);
    const order: string[] = [];
    const hostKeyCheck = questions.turn(async () => {
      order.push('check web1');
      const yes = await asker.confirm('web1', 'Trust the host key?', false);
      order.push('recorded web1');
      return yes;
    });
    const other = asker.confirm('web2', 'Migrate?', false).then((answer) => (order.push('answered web2'), answer));
    expect(await Promise.all([hostKeyCheck, other])).toEqual([true, true]);
    // web2's question waited for the whole check, recording included.
    expect(order).toEqual(['check web1', 'recorded web1', 'answered web2']);
    expect(shown).toEqual(['web1: Trust the host key?', 'web2: Migrate?']);
    expect(peak()).toBe(1);
  });

  it('a question that fails does not block the ones behind it', async () => {
    const questions = createQuestionQueue();
    const failed = questions.turn(async () => {
      throw new Error('the terminal went away');
    });
    const next = questions.turn(async () => 'answered');
    await expect(failed).rejects.toThrow('the terminal went away');
    await expect(next).resolves.toBe('answered');
  });

  it('work started during a turn that asks after the turn ended waits like anyone else', async () => {
    const questions = createQuestionQueue();
    let late: Promise<string> | undefined;
    await questions.turn(async () => {
      late = sleep(20).then(() => questions.turn(async () => 'late'));
    });
    const order: string[] = [];
    const blocker = questions.turn(async () => {
      await sleep(40);
      order.push('blocker');
    });
    await Promise.all([blocker, late!.then((answer) => order.push(answer))]);
    expect(order).toEqual(['blocker', 'late']);
  });
});
