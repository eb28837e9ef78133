/**
 * The bottom of the SSH wing: what the CLI tells it for a run (SshSettings)
 * and the questions it may ask (host keys, passphrases). Everything else in
 * src/ssh imports these; these import nothing of it but the run state's type.
 */
import type { QuestionQueue } from '../core/prompter.ts';
import type { Redactor } from '../core/secret.ts';
import type { SshRunState } from './run-state.ts';

/** The question asked on a TTY for an unknown host key, with the text ssh(1) would print. */
export interface HostKeyQuestion {
  site: string;
  /** The host as known_hosts will name it (`[127.0.0.1]:2222`). */
  host: string;
  keyType: string;
  /** `SHA256:...`, as OpenSSH prints it; a user may answer by typing it. */
  fingerprint: string;
  /** Extra warning, e.g. other key types are known for this host. */
  warning?: string;
  /** The whole question, ready to show: "The authenticity of host ... Are you sure you want to continue connecting (yes/no)?" */
  text: string;
}

/** Asked for an encrypted key's passphrase. */
export interface PassphraseRequest {
  site: string;
  /** Full path, or `DEPLOY_SSH_KEY` for a key given in the environment. */
  keyPath: string;
  /** `~/.ssh/id_ed25519`: how to name it in the prompt. */
  label: string;
  /** 1 for the first ask; a wrong answer is asked again up to 3 times, as ssh(1) does. */
  attempt: number;
}

/**
 * What the CLI tells the SSH layer for a run. Pass the same object for every
 * site of the run: answers (passphrases, accepted host keys) and the parsed
 * ssh config are shared through it, so each is asked or read once.
 *
 * @example
 * const ssh: SshSettings = {
 *   ...sshSettingsFromEnv(process.env),
 *   configFile: flags.sshConfig,
 *   acceptNewHostKeys: flags.acceptNewHostKeys,
 *   askHostKey: tty ? (q) => confirm(q.text) : undefined,
 *   passphrase: passphraseProvider({ env: process.env, ask: tty ? (r) => password(`Enter passphrase for key '${r.label}':`) : undefined }),
 *   redactor,
 *   onWarning: (site, message) => bus.emit({ type: 'log', site, level: 'warn', message }),
 * };
 * transportFor: (site) => sshTransportFor(site, ssh)
 */
export interface SshSettings {
  /** `-F FILE`: this ssh config instead of ~/.ssh/config and /etc/ssh/ssh_config; `'none'` reads none. */
  configFile?: string;
  /** The system-wide ssh config; default /etc/ssh/ssh_config, null skips it. */
  systemConfigFile?: string | null;
  /** `--accept-new-host-keys` (OpenSSH's StrictHostKeyChecking=accept-new): record unknown hosts' keys without asking. Changed keys are still refused. */
  acceptNewHostKeys?: boolean;
  /** Ask about an unknown host key (on a TTY only); resolve true to connect and record the key. Without it unknown hosts are refused. */
  askHostKey?: (question: HostKeyQuestion) => Promise<boolean>;
  /** The run's one question queue (src/prompts): each host key check and its question take one turn in it. Without it, checks queue among themselves. */
  questions?: QuestionQueue;
  /** The passphrase of an encrypted key, or undefined when none can be had. See passphraseProvider(). */
  passphrase?: (request: PassphraseRequest) => Promise<string | undefined>;
  /** A private key as text (env `DEPLOY_SSH_KEY`, e.g. a CI secret), tried first. */
  privateKey?: string;
  /** The agent socket; default `SSH_AUTH_SOCK` from `env`; null: no agent. */
  agentSocket?: string | null;
  /** Passphrases are added here as they are learnt, so no view, log or error shows them. */
  redactor?: Redactor;
  /** Things every run should say (host key checking off, a key recorded, config ignored). */
  onWarning?: (site: string, message: string) => void;
  /** Replaces the known_hosts files from ssh config/defaults (all read; new keys go to the first). */
  knownHostsFiles?: string[];
  /** Replaces /etc/ssh/ssh_known_hosts{,2} (and GlobalKnownHostsFile); tests pass []. */
  globalKnownHostsFiles?: string[];
  /** Handshake timeout when ssh config sets no ConnectTimeout; default 20 s. */
  readyTimeoutMs?: number;
  /** The operator's home (`~`); default os.homedir(). Tests point it at a temp dir. */
  home?: string;
  /** For ${VAR} in ssh config and SSH_AUTH_SOCK; default process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * What the run has learnt so far (parsed ssh config, loaded keys, accepted
   * and refused host keys). sshRunSettings() gives each run one; settings
   * used without it get one on first use. A spread (`{ ...ssh, configFile }`)
   * carries it along, so nothing is asked twice.
   */
  runState?: SshRunState;
}
