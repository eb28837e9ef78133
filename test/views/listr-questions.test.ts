import { describe, expect, it } from 'vitest';
import type { QuestionBoard } from '../../src/views/listr.ts';
import { ListrQuestions, visibleFrame, type ListrQuestion } from '../../src/views/listr-questions.ts';

/** A stand-in for the listr view: a board while it runs (sites named in `running`), and a record of where each question was drawn. */
function setup(running: boolean, answer: string) {
  const drawn: { board: boolean; question: ListrQuestion }[] = [];
  const asked: (string | null)[] = [];
  const board: QuestionBoard = { columns: 76, show: () => undefined, clear: () => undefined };
  const view = {
    questionBoard: async (site: string | null) => {
      asked.push(site);
      return running ? board : undefined;
    },
  };
  const questions = new ListrQuestions(view, async (shownOn, question) => {
    drawn.push({ board: shownOn === board, question });
    return answer;
  });
  return { questions, drawn, asked };
}

describe('the listr view shows questions', () => {
  it("on the board under the tree, for the site that asks, labelled with the site", async () => {
    const { questions, drawn, asked } = setup(true, 'retry');
    const choice = await questions.select('web1', 'Command failed. What now?', [
      { name: 'Retry', value: 'retry' },
      { name: 'Skip', value: 'skip' },
    ]);
    expect(choice).toBe('retry');
    expect(asked).toEqual(['web1']);
    expect(drawn).toEqual([{ board: true, question: { kind: 'select', message: '[web1] Command failed. What now?', choices: [{ name: 'Retry', value: 'retry' }, { name: 'Skip', value: 'skip' }] } }]);
  });

  it('on the terminal when the view is not running, hidden input masked', async () => {
    const { questions, drawn } = setup(false, 'hunter2');
    expect(await questions.secret(null, 'sudo password:')).toBe('hunter2');
    expect(drawn).toEqual([{ board: false, question: { kind: 'password', message: 'sudo password:', mask: '*' } }]);
  });

  it('a yes/no question lists its default first, so Enter takes it', async () => {
    const { questions, drawn } = setup(true, 'no');
    expect(await questions.confirm('web1', 'Trust the host key?', false)).toBe(false);
    expect(await questions.confirm('web1', 'Migrate?', true)).toBe(false);
    const firsts = drawn.map((d) => (d.question.kind === 'select' ? d.question.choices[0]?.value : undefined));
    expect(firsts).toEqual(['no', 'yes']);
  });
});

describe("a prompt's screen writes as the board shows them", () => {
  it('keeps the lines and colours, drops cursor moves, erases and the cursor switch', () => {
    const written = '\x1b[1B\x1b[2K\x1b[1A\x1b[2K\x1b[G\x1b[32m?\x1b[39m Deploy?\n\x1b[36m❯ No\x1b[39m\n  Yes\x1b[?25l\x1b[3G\n';
    expect(visibleFrame(written)).toBe('\x1b[32m?\x1b[39m Deploy?\n\x1b[36m❯ No\x1b[39m\n  Yes');
  });

  it('a write that only moves the cursor or shows it leaves nothing to show', () => {
    expect(visibleFrame('\x1b[2K\x1b[G\n\x1b[?25h')).toBe('');
  });
});
