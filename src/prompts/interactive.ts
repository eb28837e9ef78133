import type { Answer, FailureAnswer, Prompter, QuestionQueue } from '../core/prompter.ts';
import type { CommandError } from '../core/errors.ts';
import type { Asker } from './asker.ts';
import { createQuestionQueue } from './queue.ts';

export { inquirerAsker, queuedAsker, type Asker } from './asker.ts';

type FailureChoice = FailureAnswer | 'skip-all' | 'abort-all';

/**
 * Asks the person at the terminal, one question at a time (sites running in
 * parallel queue up; the others keep running until they need an answer
 * themselves). "… for all sites" answers are remembered for the rest of the run.
 * Pass the run's one {@link QuestionQueue} as `queue`, so these questions wait
 * behind host key and passphrase questions too (a queue of its own otherwise).
 *
 * @example
 * const questions = createQuestionQueue();
 * new InteractivePrompter(queuedAsker(display, questions), { yes: options.yes, queue: questions });
 */
export class InteractivePrompter implements Prompter {
  private readonly queue: QuestionQueue;
  private standing: FailureAnswer | undefined;

  constructor(
    private readonly asker: Asker,
    private readonly options: { yes?: boolean; onAbortAll?: () => void; queue?: QuestionQueue } = {},
  ) {
    this.queue = options.queue ?? createQuestionQueue();
  }

  confirm(request: { site: string | null; question: string; default?: boolean }): Promise<Answer<boolean>> {
    if (this.options.yes) return Promise.resolve({ answer: true, by: 'policy' });
    return this.queue.turn(async () => ({ answer: await this.asker.confirm(request.site, request.question, request.default ?? false), by: 'user' as const }));
  }

  onFailure(request: { site: string | null; error: CommandError }): Promise<Answer<FailureAnswer>> {
    // The whole decision is one turn: the standing answer is read after the wait, not before.
    return this.queue.turn(async () => {
      // An answer given "for all sites" while this one waited in the queue applies here too.
      if (this.standing) return { answer: this.standing, by: 'user' as const };
      const choice = await this.asker.select<FailureChoice>(request.site, `${request.error.message}\nWhat now?`, [
        { name: 'Retry the command', value: 'retry' },
        { name: 'Skip it and continue', value: 'skip' },
        { name: 'Skip failures on all sites for the rest of this run', value: 'skip-all' },
        { name: 'Abort this site', value: 'abort' },
        { name: 'Abort all sites', value: 'abort-all' },
      ]);
      if (choice === 'skip-all') this.standing = 'skip';
      if (choice === 'abort-all') {
        this.standing = 'abort';
        this.options.onAbortAll?.();
      }
      return { answer: this.standing ?? (choice as FailureAnswer), by: 'user' as const };
    });
  }
}
