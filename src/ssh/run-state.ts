/**
 * What one run has learnt about SSH, shared by all its sites: the parsed ssh
 * config, loaded keys (a passphrase is asked once per key), host keys
 * accepted or refused (a server shared by many sites is asked about once),
 * and the warnings already given. An object the run owns
 * (`SshSettings.runState`), not a table keyed on a settings object, so a
 * copy of the settings (`{ ...ssh, configFile }`) still knows what was
 * answered.
 */
import type { LoadedKey } from '../transports/ssh.ts';
import { loadSshConfig, type LoadedSshConfig } from './ssh-config.ts';

/** The settings a parsed ssh config depends on: a different `-F` reads a different file. */
interface ConfigSource {
  configFile?: string;
  home: string;
  systemConfigFile?: string | null;
}

/**
 * One run's SSH state. Create one per run (sshRunSettings() does).
 *
 * @example
 * const ssh: SshSettings = { ...sshSettingsFromEnv(), runState: new SshRunState() };
 */
export class SshRunState {
  /** Parsed ssh config (or why it could not be), by the files it came from. */
  private readonly configs = new Map<string, LoadedSshConfig | Error>();
  /** Loaded keys per file, so a passphrase is asked once per key per run. */
  readonly keys = new Map<string, Promise<LoadedKey | { skip: string }>>();
  /** Host keys accepted in this run (also when recording them failed). */
  readonly accepted = new Set<string>();
  /** Host keys the user said no to: other sites on that server are refused without asking again. */
  readonly rejected = new Set<string>();
  /** Host key questions and recording, one at a time. */
  hostKeyQueue: Promise<unknown> = Promise.resolve();
  private readonly warned = new Set<string>();

  /** The ssh config, read once per run; a broken one throws the same error for every site. */
  sshConfig(source: ConfigSource): LoadedSshConfig {
    const id = JSON.stringify([source.configFile ?? null, source.home, source.systemConfigFile === undefined ? 'default' : source.systemConfigFile]);
    let entry = this.configs.get(id);
    if (!entry) {
      try {
        entry = loadSshConfig({ configFile: source.configFile, home: source.home, systemConfigFile: source.systemConfigFile });
      } catch (error) {
        entry = error instanceof Error ? error : new Error(String(error));
      }
      this.configs.set(id, entry);
    }
    if (entry instanceof Error) throw entry;
    return entry;
  }

  /** Says `message` once per run, however many sites run into it. */
  warnOnce(site: string, message: string, onWarning: ((site: string, message: string) => void) | undefined): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    onWarning?.(site, message);
  }
}

/**
 * The settings' run state; settings that came without one get one on first
 * use (kept on the object, so every site given the same settings shares it).
 */
export function runStateOf(settings: { runState?: SshRunState }): SshRunState {
  return (settings.runState ??= new SshRunState());
}
