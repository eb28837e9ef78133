import type { Answer, FailureAnswer, OnFailurePolicy, Prompter } from '../core/prompter.ts';

/**
 * Answers without asking: the mode for CI and for any run without a TTY.
 * Nothing here can ever wait for input.
 *
 * @example new PolicyPrompter({ yes: options.yes, onFailure: options.onFailure ?? 'abort' })
 */
export class PolicyPrompter implements Prompter {
  constructor(private readonly policy: { yes: boolean; onFailure: OnFailurePolicy }) {}

  async confirm(_request?: Parameters<Prompter['confirm']>[0]): Promise<Answer<boolean>> {
    return { answer: this.policy.yes, by: 'policy' };
  }

  async onFailure(_request?: Parameters<Prompter['onFailure']>[0]): Promise<Answer<FailureAnswer>> {
    return { answer: this.policy.onFailure === 'continue' ? 'skip' : 'abort', by: 'policy' };
  }
}
