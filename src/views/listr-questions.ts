import type { Asker } from '../prompts/asker.ts';
import { questionLabel } from '../prompts/asker.ts';
import type { Wrapper } from './listr.ts';

/** One question for a prompt: a choice or hidden input. */
export type ListrQuestion =
  | { kind: 'select'; message: string; choices: { name: string; value: string }[] }
  | { kind: 'password'; message: string; mask: string };

/**
 * Draws a question: in `row` (a listr task row) when one is given, else
 * straight on the terminal. Swappable so the placement is testable without a TTY.
 */
export type ShowQuestion = (row: Wrapper | undefined, question: ListrQuestion) => Promise<string>;

/** The real drawing: @inquirer/prompts through listr2's prompt adapter, or on its own. */
export const showWithInquirer: ShowQuestion = async (row, question) => {
  const { select, password } = await import('@inquirer/prompts');
  if (!row) return question.kind === 'select' ? select(question) : password(question);
  const { ListrInquirerPromptAdapter } = await import('@listr2/prompt-adapter-inquirer');
  const prompt = row.prompt(ListrInquirerPromptAdapter);
  return (question.kind === 'select' ? await prompt.run(select, question) : await prompt.run(password, question)) as string;
};

/**
 * The listr view's display of questions: each one in its site's running row,
 * so the question sits where its site is (on the terminal when no row runs).
 * It shows; the run's question queue decides when (see `queuedAsker`).
 *
 * @example const asker = queuedAsker(new ListrQuestions(listrView), questions);
 */
export class ListrQuestions implements Asker {
  constructor(
    private readonly view: { rowFor(site: string | null): Wrapper | undefined },
    private readonly show: ShowQuestion = showWithInquirer,
  ) {}

  async select<T extends string>(site: string | null, message: string, choices: { name: string; value: T }[]): Promise<T> {
    return (await this.show(this.view.rowFor(site), { kind: 'select', message: questionLabel(site, message), choices })) as T;
  }

  /** Hidden input through the site's row (or straight to the terminal when no row runs). */
  secret(site: string | null, message: string): Promise<string> {
    return this.show(this.view.rowFor(site), { kind: 'password', message: questionLabel(site, message), mask: '*' });
  }

  /** A yes/no choice in the row, the default first (Enter takes it). */
  async confirm(site: string | null, message: string, defaultAnswer: boolean): Promise<boolean> {
    const yes = { name: 'Yes', value: 'yes' as const };
    const no = { name: 'No', value: 'no' as const };
    return (await this.select(site, message, defaultAnswer ? [yes, no] : [no, yes])) === 'yes';
  }
}
