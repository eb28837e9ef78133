import type { CommandError } from '../core/errors.ts';

/** What the user (or the policy) can say when a command fails. */
export type FailureAnswer = 'retry' | 'skip' | 'abort';

export interface Answer<T> {
  answer: T;
  by: 'user' | 'policy';
}

/**
 * Asking the user, or answering by policy when nobody can be asked. The
 * core calls these and never touches the terminal itself.
 */
export interface Prompter {
  confirm(request: { site: string | null; question: string; default?: boolean }): Promise<Answer<boolean>>;
  onFailure(request: { site: string | null; error: CommandError }): Promise<Answer<FailureAnswer>>;
}

export type OnFailurePolicy = 'abort' | 'continue';

/**
 * Answers without asking: the mode for CI and for any run without a TTY.
 * Nothing here can ever wait for input.
 */
export class PolicyPrompter implements Prompter {
  constructor(private readonly policy: { yes: boolean; onFailure: OnFailurePolicy }) {}

  async confirm(): Promise<Answer<boolean>> {
    return { answer: this.policy.yes, by: 'policy' };
  }

  async onFailure(): Promise<Answer<FailureAnswer>> {
    return { answer: this.policy.onFailure === 'continue' ? 'skip' : 'abort', by: 'policy' };
  }
}
