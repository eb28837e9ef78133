import type { Answer, FailureAnswer, Prompter } from './prompter.ts';
import type { CommandError } from '../core/errors.ts';

/** Shows one question on the terminal; implemented by the active view. */
export interface Asker {
  select<T extends string>(site: string | null, message: string, choices: { name: string; value: T }[]): Promise<T>;
  confirm(site: string | null, message: string, defaultAnswer: boolean): Promise<boolean>;
  /** Hidden input (passwords, passphrases): never echoed. */
  secret(site: string | null, message: string): Promise<string>;
}

/**
 * One question on the screen at a time, whoever asks: the prompter, host key
 * checks and passphrase questions all queue here.
 */
export function serialAsker(asker: Asker): Asker {
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(ask: () => Promise<T>): Promise<T> => {
    const next = queue.then(ask, ask);
    queue = next.catch(() => undefined);
    return next;
  };
  return {
    select: (site, message, choices) => serial(() => asker.select(site, message, choices)),
    confirm: (site, message, defaultAnswer) => serial(() => asker.confirm(site, message, defaultAnswer)),
    secret: (site, message) => serial(() => asker.secret(site, message)),
  };
}

type FailureChoice = FailureAnswer | 'skip-all' | 'abort-all';

/**
 * Asks the person at the terminal, one question at a time (sites running in
 * parallel queue up; the others keep running until they need an answer
 * themselves). "… for all sites" answers are remembered for the rest of the run.
 */
export class InteractivePrompter implements Prompter {
  private queue: Promise<unknown> = Promise.resolve();
  private standing: FailureAnswer | undefined;

  constructor(
    private readonly asker: Asker,
    private readonly options: { yes?: boolean; onAbortAll?: () => void } = {},
  ) {}

  private serial<T>(ask: () => Promise<T>): Promise<T> {
    const next = this.queue.then(ask, ask);
    this.queue = next.catch(() => undefined);
    return next;
  }

  confirm(request: { site: string | null; question: string; default?: boolean }): Promise<Answer<boolean>> {
    if (this.options.yes) return Promise.resolve({ answer: true, by: 'policy' });
    return this.serial(async () => ({ answer: await this.asker.confirm(request.site, request.question, request.default ?? false), by: 'user' as const }));
  }

  onFailure(request: { site: string | null; error: CommandError }): Promise<Answer<FailureAnswer>> {
    return this.serial(async () => {
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

/** Asks with @inquirer/prompts directly, for views that don't own the screen. */
export const inquirerAsker: Asker = {
  async select(site, message, choices) {
    const { select } = await import('@inquirer/prompts');
    return select({ message: site ? `[${site}] ${message}` : message, choices });
  },
  async confirm(site, message, defaultAnswer) {
    const { confirm } = await import('@inquirer/prompts');
    return confirm({ message: site ? `[${site}] ${message}` : message, default: defaultAnswer });
  },
  async secret(site, message) {
    const { password } = await import('@inquirer/prompts');
    return password({ message: site ? `[${site}] ${message}` : message, mask: '*' });
  },
};
