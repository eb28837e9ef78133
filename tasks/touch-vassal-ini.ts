import { parseDuration, sh, task, type TaskDefinition } from '../src/index.ts';
import { resolveSite, shellPath, type PerSite, type SiteOptions } from './options.ts';
import { appInfo, appServerOf } from './reload/app.ts';
import { serviceKind } from './reload/service.ts';
import { isServiceReload, planReload, ReloadRefused, reloadStrategyOf, type ReloadStrategy } from './reload/strategy.ts';
import { explainReload, lastJson, parseVassalIni, PROBE_SCRIPT, type ProbeOutcome, type ProbeSnapshot } from './uwsgi.ts';

/** Options of {@link touchVassalIni}. */
export interface TouchVassalIniOptions extends SiteOptions {
  /** How long to wait at most for a verdict on the new instance: `'30s'`, `'2m'` or milliseconds. Default 30s. */
  timeout?: string | number;
  /** Pause between checks. Default 500ms. */
  interval?: string | number;
  /**
   * Only when nothing shows the new instance (no readable log, and no
   * uWSGI workers to watch): how long after the touch to start probing.
   * Default 5s.
   */
  grace?: string | number;
  /** Check that the app came back (default true). False only touches. */
  verify?: boolean;
  /**
   * How the app is told to reload (default `touch`, the vassal ini): see
   * {@link ReloadStrategy}. A site's `vars.reload` wins.
   */
  reload?: PerSite<ReloadStrategy>;
}

/**
 * Thrown by `touchVassalIni` when the app did not come back. Its message
 * starts with {@link headline}, one specific line ("alleged: the new code
 * does not load: ModuleNotFoundError: No module named 'missing'"), then the
 * evidence: the traceback's last frame, how it was reproduced, the vassal
 * log's explaining lines, the last check.
 */
export class AppNotBackError extends Error {
  override readonly name = 'AppNotBackError';
  constructor(
    message: string,
    readonly site: string,
    readonly reason: string,
    /** The explaining lines of the vassal's log since the touch (empty when it was not readable). */
    readonly logLines: readonly string[],
    /** The message's first line: the site and the cause. */
    readonly headline: string = message.split('\n')[0] as string,
    /** Seconds from the touch to the verdict; null when nothing was touched. */
    readonly seconds: number | null = null,
    /** How the wait ended: `no-app`, `http-500`, `gateway`, `log`, `dead`, `timeout`, `timeout-no-restart`, `ini-owner`, `check-failed`. */
    readonly kind: string = 'unknown',
  ) {
    super(message);
  }
}

/**
 * Reload the site's app by touching its uWSGI vassal ini, then wait
 * (bounded) for a verdict on the *new* instance: through `healthUrl` when
 * the site has one, else with a request over the vassal's socket. It knows
 * the new instance from the old by the vassal's log when readable, else by
 * its uWSGI processes (new workers, old ones gone), and decides as soon as
 * it answers, answers without an app, keeps answering 5xx, or is not
 * running. A failure leads with its cause: the log's lines, else the load
 * reproduced as the site user from the ini (`chdir`, `home`, `env`,
 * `module`...), else the socket's permissions, else what the check got.
 * It refuses, untouched, an ini owned by root (tyrant mode would not run
 * it). The log line says how long the verdict took: "alleged is back after
 * 1.2s: ...". Needs `python3` on the server.
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
      const vars = c.site.vars as { reload?: unknown; app?: unknown };
      const strategy = reloadStrategyOf(vars.reload ?? (typeof options.reload === 'function' ? options.reload(c.site) : options.reload), c.site.name);
      // An app server that is no emperor's vassal is described in the deployfile, not read from an ini.
      const app = appServerOf(vars.app, c.site.name);
      // A reload that could not even be asked for is explained here, with what to do, not as a bare failed command.
      // A supervisor's failed restart is explained by the check instead: it fails exactly when the new code does not load.
      const trigger = async (plan: ReturnType<typeof planReload>): Promise<string | undefined> => {
        const done = await c.warnOnly().run(plan.command, { label: plan.label });
        if (!done.failed) return undefined;
        const why = (done.stderr || done.stdout).trim().split('\n').slice(-3).join('; ') || `exit code ${done.exitCode}`;
        if (plan.explainFailure && options.verify !== false && !c.dryRun) return why;
        return c.abort(`${site.site}: could not reload (${plan.label}): ${why}. ${plan.hint}`);
      };
      if ((options.verify === false || c.dryRun) && strategy === 'touch' && !app) {
        await c.run(sh`touch ${vassal}`);
        if (c.dryRun && options.verify !== false) c.log(`would wait up to ${timeoutMs / 1000}s for ${site.site} to answer`);
        return;
      }

      let info;
      if (app) {
        if (!isServiceReload(strategy) && typeof strategy !== 'object') {
          return c.abort(
            `${site.site}: reload '${strategy}' acts on a uWSGI vassal ini, but vars.app says this site's app server is ${app.program}, not an emperor's vassal. ` +
              'Name its reload: { supervisor }, { daemontools }, { runit }, { systemd }, { apache }, { fcgid } or { command } (README: Choosing how a site reloads).',
          );
        }
        info = appInfo(app, { codeDir: site.codeDir, virtualenv: site.virtualenv });
      } else {
        if (isServiceReload(strategy)) {
          return c.abort(
            `${site.site}: reload ${JSON.stringify(strategy)} restarts an app server, and the check needs to know which: ` +
              "describe it in the site's vars.app (program, and socket, module), e.g. app: { program: 'gunicorn', socket: '127.0.0.1:8001', module: 'shop.wsgi:application' }.",
          );
        }
        const ini = await c.warnOnly().run(sh`cat ${vassal}`, { quiet: true });
        // touch would create a missing ini, and the emperor would start an empty vassal.
        if (ini.failed) return c.abort(`touchVassalIni: cannot read the vassal ini ${site.vassal}: ${ini.stderr.trim() || `exit code ${ini.exitCode}`}. Is the vassal var right?`);
        info = parseVassalIni(ini.stdout, site.vassal);
      }
      let plan;
      try {
        plan = planReload(strategy, info, site.vassal);
        if (strategy === 'chain' && site.layout === 'releases') {
          // The master keeps the working directory it resolved at start (the old release); only a full reload re-reads chdir.
          throw new ReloadRefused("reload 'chain': not done, a chain reload keeps the master's working directory, which is the old release in the releases layout; use reload: 'fifo' (graceful, re-reads chdir).");
        }
      } catch (error) {
        if (error instanceof ReloadRefused) return c.abort(`${site.site}: ${error.message}`);
        throw error;
      }
      if (options.verify === false || c.dryRun) {
        await trigger(plan);
        if (c.dryRun && options.verify !== false) c.log(`would wait up to ${timeoutMs / 1000}s for ${site.site} to answer`);
        return;
      }
      const log = site.uwsgiLog ?? info.log;
      if (!site.healthUrl && !info.socket) c.warn(app ? `no app.socket and no healthUrl: only checking that ${app.program} restarted` : `no socket in ${site.vassal} and no healthUrl: only checking that uWSGI restarted`);

      // Whose processes tell the new instance from the old: the vassal ini's owner, or vars.app's program and user.
      const args: string[] = app ? ['--program', app.program, ...(app.user ? ['--user', app.user] : [])] : ['--ini', site.vassal];
      if (app && plan.marker) args.push('--marker', plan.marker);
      if (log) args.push('--log', log);
      // A touch of the ini while the emperor still reloads from an earlier one can be lost: wait for that one first.
      const touchesVassal = !app && plan.marker === site.vassal;
      const settleArgs = touchesVassal ? ['--settle-earlier', String(SETTLE_EARLIER_S)] : [];
      const snapshot = await c.warnOnly().run(sh`python3 - snapshot ${[...args, ...settleArgs]}`, { quiet: true, stdin: PROBE_SCRIPT });
      const before = lastJson<ProbeSnapshot>(snapshot.stdout);
      if (!before) {
        return c.abort(
          `touchVassalIni: could not inspect ${site.site}'s ${app ? 'app server' : 'vassal'} before reloading it (python3 on the server is needed):\n` +
            `  ${tail(snapshot.stderr || snapshot.stdout) || `exit code ${snapshot.exitCode}`}\n` +
            'Nothing was reloaded. To reload without checking, use touchVassalIni({ verify: false }).',
        );
      }
      // A log the user named and cannot read is worth a word; the ini's own
      // logto usually is root's (or absent), and the load is reproduced instead.
      if ((site.uwsgiLog || app?.log) && before.logError) c.warn(`cannot read the ${app ? `${app.program} ` : 'uWSGI '}log ${log}: ${before.logError}`);
      // Deploying as root, a root-owned ini means no tyrant mode (the demo's stand-in emperor, say).
      // Other strategies are for root-owned vassals: there it is expected.
      if (!app && before.ini && plan.touchesIni && (before.ini.uid === 0 || before.ini.gid === 0) && before.uid !== 0) {
        const owner = `${before.ini.user}:${before.ini.group}`;
        const headline = `${site.site}: the uWSGI emperor (tyrant mode) will not run ${site.vassal}: it is owned by ${owner} (uid/gid 0)`;
        const message = [
          headline,
          'Tyrant mode runs a vassal as its ini\'s owner and group and refuses uid or gid 0: it has stopped this vassal, or never started it.',
          `Not touched. As root: chown ${c.site.user}:uwsgi ${site.vassal}`,
          "If this emperor is not in tyrant mode (a root-owned vassal with uid/gid in it), reload it another way: reload: 'touch-reload' or 'sudo-touch' (README: Choosing how a site reloads).",
        ].join('\n');
        throw new AppNotBackError(message, site.site, 'the vassal ini is owned by root', [], headline, null, 'ini-owner');
      }

      const earlier = before.earlier;
      if (earlier?.settled) {
        c.log(`${site.vassal} was touched ${earlier.ago}s before this deploy; waited ${earlier.waited}s for the reload that started to finish (a touch during a reload can be lost)`);
      } else if (earlier) {
        c.warn(
          `${site.vassal} was touched ${earlier.ago}s before this deploy, and the reload that started was not over after ${earlier.waited}s; ` +
            'touching it anyway (uWSGI can lose a touch that comes during a reload)',
        );
      }

      const commandSaid = await trigger(plan);

      const url = site.healthUrl ? new URL(site.healthUrl) : undefined;
      const path = url ? `${url.pathname}${url.search}` : '/';
      const wait: string[] = [...args, '--log-offset', String(before.logSize ?? 0), '--procs', before.procs];
      // The clock starts at the mark the reload left (a file's mtime), else when the snapshot was taken.
      // An app server's marker is already in args (the snapshot needs it too).
      if (plan.marker && !app && plan.marker !== site.vassal) wait.push('--marker', plan.marker);
      if (!plan.marker) wait.push('--start', String(before.now));
      if (info.socket) wait.push('--socket', info.socket.address, '--protocol', info.socket.protocol);
      if (site.healthUrl) wait.push('--url', site.healthUrl, '--path', path, '--host', url?.hostname ?? 'localhost');
      if (info.load) wait.push('--load', JSON.stringify(info.load));
      wait.push('--timeout', seconds(timeoutMs), '--interval', seconds(intervalMs), '--grace', seconds(graceMs));
      const deaf = touchesVassal ? deafWindow(before, 'reloadMercy' in info ? info.reloadMercy : undefined) : undefined;
      if (deaf) wait.push('--mercy-until', String(deaf.until));
      // The script's own bound: the timeout, or the end of a mercy the master may be deaf for, whichever is later.
      const boundMs = Math.max(timeoutMs, deaf ? Math.ceil((deaf.until - before.now) * 1000) : 0);
      const result = await c.warnOnly().run(sh`python3 - wait ${wait}`, {
        quiet: true,
        // The arguments carry the ini's load settings as JSON: say what it does instead (--json keeps the line).
        label: `python3 - wait: until the new instance of ${site.site} answers (at most ${boundMs / 1000}s)`,
        stdin: PROBE_SCRIPT,
        // The script stops itself at the deadline (plus a bounded reproduction); this only catches a hung connection.
        timeout: boundMs + 30_000,
      });
      const outcome = lastJson<ProbeOutcome>(result.stdout);
      if (outcome?.ok && commandSaid) c.warn(`${plan.label} failed (${commandSaid}), yet the new instance answers`);
      if (outcome?.ok) {
        c.log(`${site.site} is back after ${outcome.seconds}s: ${outcome.evidence}${outcome.probe ? `; ${outcome.probe}` : ''}`);
        if (outcome.waitedForMercy && deaf) {
          c.warn(
            `${site.site} did not reload when touched, only ${outcome.seconds}s later: the ini had been touched ${deaf.ago}s before this deploy, ` +
              `and uWSGI most likely dropped this touch while waiting out the reload-mercy (${deaf.mercy} s) of the reload that one started. ` +
              'Touch a vassal again only once its last reload is over.',
          );
        }
        // In the summary and in --json (site:end notes): how long the verdict took.
        c.report(`reload verified ${outcome.seconds}s after ${plan.since}${strategy === 'touch' ? '' : ` (${describeStrategy(strategy)})`}`);
        return;
      }
      if (!outcome) {
        const reason = `the check failed: ${tail(result.stderr || result.stdout) || `exit code ${result.exitCode}`}`;
        const headline = `${site.site}: could not tell whether the app came back after ${plan.touchesIni ? `touching ${site.vassal}` : plan.label}`;
        throw new AppNotBackError(`${headline}\n${reason}`, site.site, reason, [], headline, null, 'check-failed');
      }
      const explained = explainReload(outcome, {
        site: site.site,
        user: c.site.user,
        vassal: app ? "vars.app.module and the app server's command line" : site.vassal,
        log,
        healthUrl: site.healthUrl,
        socket: info.socket,
        path,
        since: plan.since,
        ...(app ? { server: app.program } : {}),
      });
      // The reload command's own words come after the cause: "ERROR (spawn error)" says that, not why.
      const said = commandSaid ? [`${plan.label} said: ${commandSaid}`] : [];
      // The likeliest reason nothing restarted: the touch came while an earlier reload was still under way.
      const during =
        earlier && !earlier.settled && outcome.kind === 'timeout-no-restart'
          ? [
              `The vassal was still reloading from a touch ${earlier.ago}s before this one: uWSGI loses a reload asked for during a reload, and waits up to its reload-mercy (60 s) for a worker that missed the signal. ` +
                'Deploy again once the site has settled (a minute), and look for an earlier deploy or cron job touching the ini.',
            ]
          : [];
      // Or the reload an earlier touch started left the master deaf to reloads until its mercy ran out, and it never came back.
      const deafened =
        outcome.kind === 'timeout-no-restart' && outcome.waitedForMercy && deaf && during.length === 0
          ? [
              `The ini had been touched ${deaf.ago}s before this deploy. A touch during a reload can leave uWSGI's master waiting out its reload-mercy (${deaf.mercy} s) and dropping every reload asked for meanwhile; ` +
                'the deploy waited until that mercy had run out, and still nothing restarted.',
            ]
          : [];
      const message = [explained.headline, ...during, ...deafened, ...explained.detail, ...said].join('\n');
      c.report(`reload failed, verdict ${outcome.seconds}s after ${plan.since}`);
      throw new AppNotBackError(message, site.site, outcome.reason, explained.logLines, explained.headline, outcome.seconds, outcome.kind);
    },
  });
}

/** uWSGI's reload-mercy when the ini sets none: how long a graceful reload waits for a worker to stop. */
const DEFAULT_RELOAD_MERCY_S = 60;
/** How long after a touch its reload may still be starting (the emperor's scan, the old workers' stop on a busy server). */
const EARLIER_RELOAD_S = 30;
/** From the end of a mercy to the new instance: the master kills the worker, re-executes itself and loads the app. */
const AFTER_MERCY_S = 20;

/**
 * When the ini was touched shortly before this deploy's touch: until when the
 * master may be deaf to reloads. A touch that comes during a reload is read
 * by the new master right after it forks its worker, before the worker can
 * take the signal; the master then waits out its reload-mercy for that
 * worker, and uWSGI 2.0 drops every reload asked for in that state (the
 * emperor's log: "received message 1 from emperor" with nothing after it).
 * Nothing a site user can read shows that state, so the wait for a restart
 * goes on until the mercy has run out, when the master reloads by itself.
 */
function deafWindow(before: ProbeSnapshot, iniMercy: number | undefined): { ago: number; mercy: number; until: number } | undefined {
  if (before.mtime === null || before.mtime === undefined) return undefined;
  const ago = before.now - before.mtime;
  const mercy = iniMercy ?? DEFAULT_RELOAD_MERCY_S;
  if (ago < 0 || ago >= mercy + EARLIER_RELOAD_S) return undefined;
  return { ago: Math.round(ago * 10) / 10, mercy, until: before.now + mercy + AFTER_MERCY_S };
}

/**
 * How long a deploy waits, before touching the vassal ini, for a reload an
 * earlier touch started (the emperor scans every 3 s; a graceful reload of a
 * Django app takes a few seconds more on a busy server).
 */
const SETTLE_EARLIER_S = 20;

function describeStrategy(strategy: ReloadStrategy): string {
  if (isServiceReload(strategy)) return serviceKind(strategy);
  return typeof strategy === 'object' ? 'reload command' : strategy === 'fifo' ? 'master FIFO, graceful' : strategy === 'chain' ? 'master FIFO, chain' : strategy;
}

function seconds(ms: number): string {
  return String(ms / 1000);
}

function tail(text: string): string {
  return text.trim().split('\n').slice(-5).join('\n  ');
}
