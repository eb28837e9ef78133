/**
 * Where `c.sudo`'s password comes from in a run. Not SSH's business: the
 * password goes on a command's stdin, over whatever transport runs it.
 */
import type { Redactor } from './secret.ts';

/**
 * The sudo password for `c.sudo`, learnt once per run: `DEPLOY_SUDO_PASSWORD`,
 * else asked (on a TTY) the first time a task needs it; added to the
 * redactor before anything can print it.
 *
 * @example execute({ ..., sudoPassword: sudoPasswordSource({ env: process.env, ask: tty ? () => password({ message: 'sudo password:' }) : undefined, redactor }) })
 */
export function sudoPasswordSource(options: { env?: NodeJS.ProcessEnv; ask?: () => Promise<string | undefined>; redactor?: Redactor }): () => Promise<string | undefined> {
  let answer: Promise<string | undefined> | undefined;
  return () => {
    answer ??= (async () => {
      const fromEnv = (options.env ?? process.env).DEPLOY_SUDO_PASSWORD;
      const password = fromEnv !== undefined && fromEnv !== '' ? fromEnv : await options.ask?.();
      if (password) options.redactor?.add(password);
      return password || undefined;
    })();
    return answer;
  };
}

