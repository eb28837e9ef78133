import { parseDuration, sh, task, type TaskDefinition } from '../src/index.ts';
import { resolveSite, shellPath, type SiteOptions } from './options.ts';
import { explainUwsgiLog, lastJson, parseVassalIni, PROBE_SCRIPT, type ProbeOutcome, type ProbeSnapshot } from './uwsgi.ts';

/** Options of {@link touchVassalIni}. */
export interface TouchVassalIniOptions extends SiteOptions {
  /** How long the app may take to answer after the touch: `'30s'`, `'2m'` or milliseconds. Default 30s. */
  timeout?: string | number;
  /** Pause between checks. Default 500ms. */
  interval?: string | number;
  /**
   * Without a log to show the restart, how long after the touch to start
   * probing (the emperor notices a touch within a few seconds). Default 5s.
   */
  grace?: string | number;
  /** Check that the app came back (default true). False only touches. */
  verify?: boolean;
}

/**
 * Thrown by `touchVassalIni` when the app did not come back: its message
 * holds the reason and the uWSGI log lines that explain it, so the deploy
 * ends with exit 1 showing them.
 */
export class AppNotBackError extends Error {
  override readonly name = 'AppNotBackError';
  constructor(
    message: string,
    readonly site: string,
    readonly reason: string,
    /** The explaining lines of the vassal's log since the touch (may be empty). */
    readonly logLines: readonly string[],
  ) {
    super(message);
  }
}

/**
 * Reload the site's app by touching its uWSGI vassal ini, then wait
 * (bounded) until the *new* instance answers: through `healthUrl` when the
 * site has one, else with a request over the vassal's socket. Failing that,
 * it fails with the lines of the vassal's uWSGI log that say why
 * (`ModuleNotFoundError`, `unable to load app`, `no app loaded`, `bind()`,
 * `Permission denied`). Needs `python3` on the server.
 *
 * @example
 * tasks: { touchVassalIni: touchVassalIni({ timeout: '60s', healthUrl: (site) => `http://127.0.0.1/${site.name}/` }) }
 */
export function touchVassalIni(options: TouchVassalIniOptions = {}): TaskDefinition {
  const timeoutMs = parseDuration(options.timeout ?? '30s');
  const intervalMs = parseDuration(options.interval ?? '500ms');
  const graceMs = parseDuration(options.grace ?? '5s');
  return task({
    description: 'Reload the app (touch its uWSGI vassal ini) and wait until it answers',
    run: async (c) => {
      const site = resolveSite(c.site, options);
      const vassal = shellPath(site.vassal);
      if (options.verify === false || c.dryRun) {
        await c.run(sh`touch ${vassal}`);
        if (c.dryRun && options.verify !== false) c.log(`would wait up to ${timeoutMs / 1000}s for ${site.site} to answer`);
        return;
      }

      const ini = await c.warnOnly().run(sh`cat ${vassal}`, { quiet: true });
      // touch would create a missing ini, and the emperor would start an empty vassal.
      if (ini.failed) return c.abort(`touchVassalIni: cannot read the vassal ini ${site.vassal}: ${ini.stderr.trim() || `exit code ${ini.exitCode}`}. Is the vassal var right?`);
      const info = parseVassalIni(ini.stdout, site.vassal);
      const log = site.uwsgiLog ?? info.log;
      if (!log) c.warn(`no uWSGI log for ${site.site} (no logto/daemonize in ${site.vassal}; set the uwsgiLog var): a failed reload can't be explained`);
      if (!site.healthUrl && !info.socket) c.warn(`no socket in ${site.vassal} and no healthUrl: only checking that uWSGI restarted`);

      const args: string[] = ['--ini', site.vassal];
      if (log) args.push('--log', log);
      if (info.socket) args.push('--socket', info.socket.address, '--protocol', info.socket.protocol);
      const snapshot = await c.warnOnly().run(sh`python3 - snapshot ${args}`, { quiet: true, stdin: PROBE_SCRIPT });
      const before = lastJson<ProbeSnapshot>(snapshot.stdout);
      if (!before) {
        return c.abort(
          `touchVassalIni: could not inspect ${site.site}'s vassal before reloading it (python3 on the server is needed):\n` +
            `  ${tail(snapshot.stderr || snapshot.stdout) || `exit code ${snapshot.exitCode}`}\n` +
            'Nothing was touched. To reload without checking, use touchVassalIni({ verify: false }).',
        );
      }
      if (log && before.logError) c.warn(`cannot read the uWSGI log ${log}: ${before.logError}`);

      await c.run(sh`touch ${vassal}`);

      const wait: string[] = [...args, '--log-offset', String(before.logSize ?? 0), '--pids', before.pids.join(',')];
      if (site.healthUrl) wait.push('--url', site.healthUrl);
      wait.push('--timeout', seconds(timeoutMs), '--interval', seconds(intervalMs), '--grace', seconds(graceMs));
      const result = await c.warnOnly().run(sh`python3 - wait ${wait}`, {
        quiet: true,
        stdin: PROBE_SCRIPT,
        // The script stops itself at the deadline; this only catches a hung connection.
        timeout: timeoutMs + 30_000,
      });
      const outcome = lastJson<ProbeOutcome>(result.stdout);
      if (outcome?.ok) {
        c.log(`${site.site} is back after ${outcome.seconds}s: ${outcome.evidence}${outcome.probe ? `; ${outcome.probe}` : ''}`);
        return;
      }

      const reason = outcome ? outcome.reason : `the check failed: ${tail(result.stderr || result.stdout) || `exit code ${result.exitCode}`}`;
      const lines = outcome ? explainUwsgiLog(outcome.log) : [];
      const shown = lines.length > 0 ? lines : outcome ? outcome.log.split('\n').filter((l) => l.trim() !== '').slice(-10) : [];
      let message = `${site.site} did not come back after touching ${site.vassal}: ${reason}${outcome ? ` (after ${outcome.seconds}s)` : ''}`;
      if (outcome?.probe) message += `\nLast check: ${outcome.probe}`;
      if (shown.length > 0) {
        message += `\nuWSGI log ${log} since the touch:\n${shown.map((line) => `  ${line}`).join('\n')}`;
      } else if (log) {
        message += `\nNothing in the uWSGI log ${log} since the touch${outcome?.logError ? ` (${outcome.logError})` : ''}.`;
      } else {
        message += '\nNo uWSGI log to show: set the uwsgiLog var to the vassal\'s log.';
      }
      throw new AppNotBackError(message, site.site, reason, lines);
    },
  });
}

function seconds(ms: number): string {
  return String(ms / 1000);
}

function tail(text: string): string {
  return text.trim().split('\n').slice(-5).join('\n  ');
}
