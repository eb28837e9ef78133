import { sh, type CommandInput } from '../../src/index.ts';
import { shellPath } from '../options.ts';
import type { VassalInfo } from '../uwsgi.ts';
import { planServiceReload, serviceKind, serviceReloadOf, type ServiceReload } from './service.ts';

/**
 * How a site's uWSGI app is told to reload, chosen per site (`reload` in its
 * vars or in the task's options). Every one is verified the same way: the
 * new instance's processes appear and it answers, or the failure is
 * explained with the load reproduced as the site user.
 *
 * - `touch` (default): touch the vassal ini; a tyrant-mode emperor, whose
 *   vassal the site user owns, does a full graceful reload after its next
 *   directory scan.
 * - `touch-reload`: touch the first file the ini's `touch-reload` names; for
 *   a vassal root owns (a non-tyrant emperor, `uid`/`gid` in the ini), the
 *   site user owning that file.
 * - `fifo`: write `r` to the ini's `master-fifo`: the master reloads
 *   gracefully at once, without waiting for the emperor's scan.
 * - `chain`: write `c` to the `master-fifo`: one worker at a time, so the
 *   others keep serving; needs `lazy-apps` and at least two workers.
 * - `sudo-touch`: `sudo -n touch` the vassal ini, for a root-owned vassal
 *   of a non-tyrant emperor where sudoers lets the site user run exactly
 *   that without a password (`shop ALL=(root) NOPASSWD: /usr/bin/touch
 *   /etc/uwsgi/emperor.d/shop.ini`): a rule that narrow cannot allow the
 *   `sh -c` that `c.sudo` runs, so this is a plain `sudo -n`.
 * - `{ command }`: any command run as the site user, e.g. a reload script
 *   (`sudo: true` runs it through `sudo -n sh -c`).
 * - a supervised app server or a web server ({@link ServiceReload}):
 *   `{ supervisor }`, `{ daemontools }`, `{ runit }`, `{ systemd }`,
 *   `{ apache }`, `{ fcgid }`; the site describes its app in `vars.app`
 *   (see AppServer), since there is no vassal ini to read.
 *
 * @example
 * sites: { shop: { host: 'web1', vars: { reload: 'fifo' } } }
 */
export type ReloadStrategy = 'touch' | 'touch-reload' | 'fifo' | 'chain' | 'sudo-touch' | { command: string; sudo?: boolean } | ServiceReload;

export const RELOAD_STRATEGIES = ['touch', 'touch-reload', 'fifo', 'chain', 'sudo-touch'] as const;

/** What one strategy does on one site: the command, and how the output and errors call it. */
export interface ReloadPlan {
  strategy: ReloadStrategy;
  /** A plain string is the deployfile's own shell line. */
  command: CommandInput;
  /** For views and errors, e.g. `write r to the master FIFO /home/shop/uwsgi.fifo`. */
  label: string;
  /** In explanations: `the touch`, `the reload`. */
  since: string;
  /** When the command fails: what to do about it, after its own error. */
  hint: string;
  /** A file whose mtime the reload sets (the ini, the touch-reload file, the FIFO): the verdict's clock starts there. */
  marker?: string;
  /** The vassal ini is the reload's trigger: a tyrant emperor runs it as its owner, who must not be root. */
  touchesIni: boolean;
  /**
   * A failed command still gets the check's explanation: a supervisor's
   * restart fails ("spawn error") exactly when the new code does not load,
   * and its own words say less than the load reproduced.
   */
  explainFailure?: boolean;
}

/** A strategy that cannot work on this vassal, with why and what to do. */
export class ReloadRefused extends Error {
  override readonly name = 'ReloadRefused';
}

/**
 * A strategy from the deployfile (site vars or task option), checked.
 *
 * @example reloadStrategyOf('fifo', 'shop') // 'fifo'
 */
export function reloadStrategyOf(value: unknown, site: string): ReloadStrategy {
  if (value === undefined || value === null) return 'touch';
  if (typeof value === 'string' && (RELOAD_STRATEGIES as readonly string[]).includes(value)) return value as ReloadStrategy;
  const service = serviceReloadOf(value, site);
  if (service) return service;
  if (typeof value === 'object' && typeof (value as { command?: unknown }).command === 'string' && (value as { command: string }).command.trim() !== '') {
    const { command, sudo } = value as { command: string; sudo?: unknown };
    const extra = Object.keys(value as object).find((key) => key !== 'command' && key !== 'sudo');
    if (extra) throw new TypeError(`site "${site}": reload { command }: unknown key "${extra}" (it takes command, sudo)`);
    if (sudo !== undefined && typeof sudo !== 'boolean') throw new TypeError(`site "${site}": reload { command }: sudo must be true or false`);
    return sudo === undefined ? { command } : { command, sudo };
  }
  throw new TypeError(
    `site "${site}": reload must be one of ${RELOAD_STRATEGIES.map((s) => `'${s}'`).join(', ')}, { command: '...' }, ` +
      `or a service: { supervisor }, { daemontools }, { runit }, { systemd }, { apache }, { fcgid }; got ${JSON.stringify(value)}`,
  );
}

/**
 * The command a strategy runs on this vassal, or a ReloadRefused saying
 * why it cannot work, before anything is sent.
 *
 * @example
 * planReload('fifo', parseVassalIni(text, ini), ini).label // 'write r to the master FIFO /home/shop/uwsgi.fifo'
 */
export function planReload(strategy: ReloadStrategy, info: VassalInfo, vassal: string): ReloadPlan {
  const base = { strategy, touchesIni: false, since: 'the reload', hint: '' };
  if (isServiceReload(strategy)) {
    const planned = planServiceReload(strategy);
    return { ...base, ...planned, since: serviceKind(strategy) === 'fcgid' ? 'the touch' : 'the restart', explainFailure: true };
  }
  if (typeof strategy === 'object') {
    const command = strategy.sudo ? sh`sudo -n sh -c ${strategy.command}` : strategy.command;
    return { ...base, command, label: strategy.command, hint: 'The reload command failed; nothing else was tried.' };
  }
  switch (strategy) {
    case 'touch':
      return { ...base, command: sh`touch ${shellPath(vassal)}`, label: `touch ${vassal}`, since: 'the touch', touchesIni: true, marker: vassal, hint: 'Is the vassal ini writable by the site user (tyrant mode: owned by it)?' };
    case 'sudo-touch':
      return {
        ...base,
        command: sh`sudo -n touch ${vassal}`,
        label: `sudo -n touch ${vassal}`,
        since: 'the touch',
        marker: vassal,
        hint: `sudo must let the site user run exactly this without a password; as root, in /etc/sudoers.d/: <site> ALL=(root) NOPASSWD: /usr/bin/touch ${vassal}`,
      };
    case 'touch-reload': {
      const file = info.touchReload?.[0];
      if (!file) throw new ReloadRefused(`reload 'touch-reload': ${vassal} has no touch-reload line. Add one naming a file the site user owns (touch-reload = /home/<site>/reload), or choose another reload.`);
      return { ...base, command: sh`touch ${file}`, label: `touch ${file} (the vassal's touch-reload)`, since: 'the touch', marker: file, hint: `The site user must own ${file} (or be allowed to write it).` };
    }
    case 'fifo':
    case 'chain': {
      const fifo = info.masterFifo;
      if (!fifo) throw new ReloadRefused(`reload '${strategy}': ${vassal} has no master-fifo line. Add one the site user can write (master-fifo = /home/<site>/uwsgi.fifo), or use reload: 'touch'.`);
      if (strategy === 'chain') {
        const workers = info.processes ?? 1;
        const missing = [!info.lazyApps ? 'lazy-apps = true (each worker loads the app itself)' : '', workers < 2 ? `at least 2 workers (it has ${workers}; processes = 2)` : ''].filter(Boolean);
        if (missing.length > 0) {
          throw new ReloadRefused(
            `reload 'chain': not done, ${vassal} needs ${missing.join(' and ')}. A chain reload replaces one worker at a time; ` +
              'without lazy-apps the workers keep the old code, and with one worker there is a gap with nobody serving (uWSGI issue #2001). ' +
              "Use reload: 'fifo' for a graceful reload instead.",
          );
        }
      }
      const letter = strategy === 'fifo' ? 'r' : 'c';
      // `> fifo` would create a plain file where none exists, and block forever without a reader: check, and bound it.
      const command = sh`test -p ${fifo} || { echo ${`${fifo} is not a FIFO: is the vassal running with this master-fifo?`} >&2; exit 3; }; timeout 5 sh -c 'printf ${letter} > "$1"' sh ${fifo} || { echo ${`no uWSGI master read ${fifo} within 5s: is the vassal running?`} >&2; exit 4; }`;
      return {
        ...base,
        command,
        label: `write ${letter} to the master FIFO ${fifo} (${strategy === 'fifo' ? 'graceful reload' : 'chain reload'})`,
        hint: 'The vassal was not reloaded; the site serves what it served before.',
        marker: fifo,
      };
    }
  }
}

/** True for the reloads of a supervised app server or a web server. */
export function isServiceReload(strategy: ReloadStrategy): strategy is ServiceReload {
  return typeof strategy === 'object' && !('command' in strategy);
}
