/** The SSH settings read from the environment: `DEPLOY_SSH_KEY`, `DEPLOY_SSH_PASSPHRASE`, `SSH_AUTH_SOCK`, the local user. */
import { userInfo } from 'node:os';
import type { PassphraseRequest, SshSettings } from './settings.ts';

/**
 * The settings that come from the environment: `DEPLOY_SSH_KEY` (a private
 * key's text) and the agent socket.
 */
export function sshSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): Pick<SshSettings, 'privateKey' | 'env'> {
  return { privateKey: env.DEPLOY_SSH_KEY || undefined, env };
}

/**
 * A passphrase source: `DEPLOY_SSH_PASSPHRASE` first (CI; used once per key,
 * never asked again when wrong), then `ask` (a TTY prompt), if given.
 *
 * @example passphraseProvider({ env: process.env, ask: (r) => password({ message: `Enter passphrase for key '${r.label}':` }) })
 */
export function passphraseProvider(options: { env?: NodeJS.ProcessEnv; ask?: (request: PassphraseRequest) => Promise<string | undefined> }): (request: PassphraseRequest) => Promise<string | undefined> {
  const fromEnv = (options.env ?? process.env).DEPLOY_SSH_PASSPHRASE;
  return async (request) => {
    if (fromEnv !== undefined && fromEnv !== '') return request.attempt === 1 ? fromEnv : undefined;
    return options.ask?.(request);
  };
}

/** ssh(1)'s default user for jump hosts: the local user name. */
export function localUser(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username;
  } catch {
    // os.userInfo throws for uids without a passwd entry (containers).
    return env.USER ?? env.LOGNAME ?? '';
  }
}
