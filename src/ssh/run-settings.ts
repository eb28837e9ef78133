import type { QuestionQueue } from '../core/prompter.ts';
import { OPERATOR_SECRET_VARS, type Redactor } from '../core/secret.ts';
import { sudoPasswordSource } from '../core/sudo-password.ts';
import { passphraseProvider, sshSettingsFromEnv } from './env.ts';
import { SshRunState } from './run-state.ts';
import type { SshSettings } from './settings.ts';

/** How the CLI asks the person at the terminal; absent without a TTY. */
export interface SshAsker {
  /** A yes/no question; `default` is what Enter means. */
  confirm(site: string | null, message: string, defaultAnswer: boolean): Promise<boolean>;
  /** A hidden answer (passphrase, password); undefined or '' when none is given. */
  secret(message: string): Promise<string | undefined>;
}

/**
 * The SSH settings and sudo password source for one `deploy run`, from the
 * flags, the environment (`DEPLOY_SSH_KEY`, `DEPLOY_SSH_PASSPHRASE`,
 * `DEPLOY_SUDO_PASSWORD`, `SSH_AUTH_SOCK`) and, on a TTY, questions.
 * `--yes` must not be passed through here: it answers c.confirm questions,
 * never host key questions.
 *
 * @example
 * const { ssh, sudoPassword } = sshRunSettings({ configFile: options.sshConfig, acceptNewHostKeys: options.acceptNewHostKeys, asker, redactor, onWarning });
 * execute({ ..., transportFor: (site) => sshTransportFor(site, ssh), sudoPassword });
 */
export function sshRunSettings(options: {
  configFile?: string;
  acceptNewHostKeys?: boolean;
  asker?: SshAsker;
  /** The run's one question queue: host key checks take their turns in it. */
  questions?: QuestionQueue;
  redactor: Redactor;
  onWarning: (site: string, message: string) => void;
  env?: NodeJS.ProcessEnv;
}): { ssh: SshSettings; sudoPassword: () => Promise<string | undefined> } {
  const env = options.env ?? process.env;
  // Known from the start of the run, so they are redacted even from output printed before their first use.
  for (const name of OPERATOR_SECRET_VARS) if (env[name]) options.redactor.add(env[name]);
  const asker = options.asker;
  const ssh: SshSettings = {
    ...sshSettingsFromEnv(env),
    configFile: options.configFile,
    acceptNewHostKeys: options.acceptNewHostKeys,
    askHostKey: asker ? (q) => asker.confirm(q.site, q.text, false) : undefined,
    questions: options.questions,
    passphrase: passphraseProvider({
      env,
      ask: asker ? (r) => asker.secret(`Enter passphrase for key '${r.label}'${r.attempt > 1 ? ' (wrong, try again)' : ''}:`) : undefined,
    }),
    redactor: options.redactor,
    onWarning: options.onWarning,
    // This run's answers and loaded keys: every site (and every copy of these settings) shares them.
    runState: new SshRunState(),
  };
  const sudoPassword = sudoPasswordSource({
    env,
    ask: asker ? () => asker.secret('sudo password on the servers (Enter if none is needed):') : undefined,
    redactor: options.redactor,
  });
  return { ssh, sudoPassword };
}
