import type { QuestionQueue } from '../core/prompter.ts';

/**
 * Shows one question and returns its answer. The active view provides one
 * (the listr view asks in the site's row, see `views/listr-questions.ts`;
 * otherwise {@link inquirerAsker} asks on the terminal); it shows questions,
 * it does not queue them: {@link queuedAsker} does.
 *
 * @example await asker.confirm('web1', 'Trust this host key?', false)
 */
export interface Asker {
  select<T extends string>(site: string | null, message: string, choices: { name: string; value: T }[]): Promise<T>;
  confirm(site: string | null, message: string, defaultAnswer: boolean): Promise<boolean>;
  /** Hidden input (passwords, passphrases): never echoed. */
  secret(site: string | null, message: string): Promise<string>;
}

/**
 * Every question through the run's one queue, then onto the display.
 *
 * @example const asker = queuedAsker(listr ? new ListrQuestions(listr) : inquirerAsker, questions);
 */
export function queuedAsker(display: Asker, queue: QuestionQueue): Asker {
  return {
    select: (site, message, choices) => queue.turn(() => display.select(site, message, choices)),
    confirm: (site, message, defaultAnswer) => queue.turn(() => display.confirm(site, message, defaultAnswer)),
    secret: (site, message) => queue.turn(() => display.secret(site, message)),
  };
}

/** The label a question carries: the site first, so parallel sites' questions say whose they are. */
export function questionLabel(site: string | null, message: string): string {
  return site ? `[${site}] ${message}` : message;
}

/** Asks with @inquirer/prompts directly, for views that don't own the screen. */
export const inquirerAsker: Asker = {
  async select(site, message, choices) {
    const { select } = await import('@inquirer/prompts');
    return select({ message: questionLabel(site, message), choices });
  },
  async confirm(site, message, defaultAnswer) {
    const { confirm } = await import('@inquirer/prompts');
    return confirm({ message: questionLabel(site, message), default: defaultAnswer });
  },
  async secret(site, message) {
    const { password } = await import('@inquirer/prompts');
    return password({ message: questionLabel(site, message), mask: '*' });
  },
};
