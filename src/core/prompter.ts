import type { CommandError } from './errors.ts';

/** What the user (or the policy) can say when a command fails. */
export type FailureAnswer = 'retry' | 'skip' | 'abort';

/**
 * An answer, and who gave it: the person at the terminal, or the policy
 * (`--yes`, `--on-failure`) when nobody can be asked. Views print the difference.
 *
 * @example { answer: true, by: 'policy' }
 */
export interface Answer<T> {
  answer: T;
  by: 'user' | 'policy';
}

/**
 * Asking the user, or answering by policy when nobody can be asked. The
 * core calls these and never touches the terminal itself; `src/prompts`
 * implements them.
 *
 * @example
 * const { answer } = await rt.prompter.confirm({ site: 'web1', question: 'Migrate?' });
 */
export interface Prompter {
  confirm(request: { site: string | null; question: string; default?: boolean }): Promise<Answer<boolean>>;
  onFailure(request: { site: string | null; error: CommandError }): Promise<Answer<FailureAnswer>>;
}

/** What `--on-failure` / `DEPLOY_ON_FAILURE` says to do with a failed command when nobody is asked. */
export type OnFailurePolicy = 'abort' | 'continue';

/**
 * The run's one line of questions: whoever asks (the prompter, host key
 * checks, passphrase and sudo password questions), one question is on the
 * screen at a time, in the order they were asked. A turn taken inside a
 * turn runs at once (a host key check holds its turn while it asks), so a
 * caller may hold its turn across several steps without locking itself out.
 *
 * @example
 * const yes = await questions.turn(() => display.confirm(site, 'Trust this host key?', false));
 */
export interface QuestionQueue {
  turn<T>(ask: () => Promise<T>): Promise<T>;
}
