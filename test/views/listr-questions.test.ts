import { describe, expect, it } from 'vitest';
import type { Wrapper } from '../../src/views/listr.ts';
import { ListrQuestions, type ListrQuestion } from '../../src/views/listr-questions.ts';

/** A stand-in for the listr view: rows by site, and a record of where each question was drawn. */
function setup(rows: Record<string, string>, answer: string) {
  const drawn: { row: string | undefined; question: ListrQuestion }[] = [];
  const view = { rowFor: (site: string | null) => (site && rows[site] ? ({ title: rows[site] } as unknown as Wrapper) : undefined) };
  const questions = new ListrQuestions(view, async (row, question) => {
    drawn.push({ row: (row as { title?: string } | undefined)?.title, question });
    return answer;
  });
  return { questions, drawn };
}

describe('the listr view shows questions', () => {
  it('in the running row of the site that asks, labelled with the site', async () => {
    const { questions, drawn } = setup({ web1: 'migrate' }, 'retry');
    const choice = await questions.select('web1', 'Command failed. What now?', [
      { name: 'Retry', value: 'retry' },
      { name: 'Skip', value: 'skip' },
    ]);
    expect(choice).toBe('retry');
    expect(drawn).toEqual([{ row: 'migrate', question: { kind: 'select', message: '[web1] Command failed. What now?', choices: [{ name: 'Retry', value: 'retry' }, { name: 'Skip', value: 'skip' }] } }]);
  });

  it('on the terminal when no row of that site runs, hidden input masked', async () => {
    const { questions, drawn } = setup({}, 'hunter2');
    expect(await questions.secret(null, 'sudo password:')).toBe('hunter2');
    expect(drawn).toEqual([{ row: undefined, question: { kind: 'password', message: 'sudo password:', mask: '*' } }]);
  });

  it('a yes/no question lists its default first, so Enter takes it', async () => {
    const { questions, drawn } = setup({ web1: 'deploy' }, 'no');
    expect(await questions.confirm('web1', 'Trust the host key?', false)).toBe(false);
    expect(await questions.confirm('web1', 'Migrate?', true)).toBe(false);
    const firsts = drawn.map((d) => (d.question.kind === 'select' ? d.question.choices[0]?.value : undefined));
    expect(firsts).toEqual(['no', 'yes']);
  });
});
