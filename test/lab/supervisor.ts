/**
 * The lab's second app server stack: Debian's gunicorn, one program per site,
 * under our own supervisord (nodaemon, its config, control socket, pid and
 * logs under labDir()/supervisor), behind the lab's nginx with proxy_pass.
 * Root only, like the rest of the lab.
 *
 * What the stack does, as measured here (Debian 12: gunicorn 20.1.0,
 * supervisor 4.2.5, a loaded 2-CPU machine):
 * - gunicorn logs to stderr (errorlog '-'). supervisord writes a program's
 *   stderr to childlogdir/<program>-stderr---supervisor-<random>.log, a name
 *   made with mkstemp: root's, mode 0600, whatever the directory. Only root
 *   reads it (or `supervisorctl tail <program> stderr`, which needs the
 *   control socket, root's too). The site user cannot read why its app failed.
 * - `supervisorctl restart <program>` is stop then start, with a gap. TERM
 *   makes gunicorn's master close and unlink its socket at once, then wait
 *   for its workers (~2 s here); nginx answers 502 ("connect() to
 *   unix:... failed (2: No such file or directory)") from the TERM until the
 *   new master has bound the socket again (~2.6 s of 502s here). Requests
 *   that come once it is bound wait in the backlog while the workers import
 *   the app. The command returns once the new program has been up for
 *   startsecs (default 1 s) plus supervisord's tick: 3.3-4.8 s here.
 * - An app that fails to import: each worker exits with code 3 (traceback,
 *   then "Worker failed to boot"), the master stops ("Reason: Worker failed
 *   to boot.", exit status 3). It lives ~1.5-2 s here, longer than the
 *   default startsecs=1, so supervisord has already called it RUNNING:
 *   `supervisorctl restart` prints "<program>: started" and exits 0, then
 *   "exited: <program> (exit status 3; not expected)", and autorestart
 *   (unexpected) starts it again, forever: never FATAL. With startsecs above
 *   the boot time (startsecs=10 here) the same failure is "Exited too
 *   quickly": restart prints "<program>: ERROR (spawn error)" and exits 7,
 *   supervisord retries startretries (3) times with a growing back-off
 *   (BACKOFF) and gives up ~15 s later (FATAL). nginx answers 502 throughout.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import * as lab from './lab.ts';

export const SUPERVISORD = '/usr/bin/supervisord';
export const SUPERVISORCTL = '/usr/bin/supervisorctl';
/** Debian's gunicorn script; run by the site's virtualenv python so the virtualenv's packages are seen. */
export const GUNICORN = '/usr/bin/gunicorn';

const dir = () => path.join(lab.labDir(), 'supervisor');
export const supervisorConfPath = () => path.join(dir(), 'supervisord.conf');
const pidPath = () => path.join(dir(), 'supervisord.pid');
const ctlSocketPath = () => path.join(dir(), 'supervisor.sock');
export const supervisorLogDir = () => path.join(dir(), 'log');

/**
 * The site's own socket directory (site user : www-data, 0750): gunicorn
 * (umask 0) makes a 0777 socket, so the directory is what keeps other site
 * users out while nginx's workers (group www-data) get in.
 */
export function gunicornSocketPath(site: string): string {
  return path.join(lab.labDir(), 'gunicorn', site, 'gunicorn.sock');
}

/** What a deploy runs to restart its own program, allowed by the site's sudoers rule. */
export function restartArgv(site: string): string[] {
  return [SUPERVISORCTL, '-c', supervisorConfPath(), 'restart', site];
}

/** The graceful reload the sudoers rule also allows: HUP to gunicorn's master, which replaces its workers. */
export function hupArgv(site: string): string[] {
  return [SUPERVISORCTL, '-c', supervisorConfPath(), 'signal', 'HUP', site];
}

/**
 * Lets the site user run exactly `supervisorctl -c <conf> restart <site>` as
 * root. Operators do it this way rather than giving the site's group the
 * control socket (`[unix_http_server] chown=`/`chmod=`): supervisord's RPC
 * has no per-program permissions, so whoever may connect may stop, start or
 * restart every program and shut supervisord down, i.e. one site could stop
 * another. A sudoers line names one command for one program.
 */
export function sudoersPath(site: string): string {
  // sudo skips files in sudoers.d whose names contain a dot; site names have none.
  return `/etc/sudoers.d/deployfile-supervisor-${site}`;
}

export interface SupervisedSite {
  site: lab.DjangoSite;
  /** Default `<settingsPackage>.wsgi:application` with example_site. */
  module?: string;
  workers?: number;
  /**
   * supervisord's startsecs (default 1): how long the program must stay up to
   * count as started. Above gunicorn's boot time it turns a failing app into
   * BACKOFF/FATAL and a failing `restart`, at the price of a slower restart.
   */
  startsecs?: number;
}

export interface Program {
  name: string;
  socketPath: string;
  /** For startNginx's `upstream.proxy`. */
  proxy: string;
  command: string;
}

export interface Supervisor {
  pid: number;
  conf: string;
  ctlSocket: string;
  logDir: string;
  /** supervisord's own log. */
  logPath: string;
  programs: Record<string, Program>;
  /** supervisorctl as root (any program, any command); resolves with its output and exit code, never throws. */
  ctl(args: string[]): Promise<{ code: number; output: string }>;
  /** `supervisorctl status <name>`'s state: RUNNING, STARTING, BACKOFF, FATAL, STOPPED, EXITED... */
  state(name: string): Promise<string>;
  /** Waits for a state, failing with the program's stderr tail. */
  waitForState(name: string, want: string, timeoutMs?: number): Promise<void>;
  /** The program's stderr log (root's), as `supervisorctl tail` sees it. */
  stderrTail(name: string, bytes?: number): Promise<string>;
  stop(): Promise<void>;
}

function programSection(s: SupervisedSite): { text: string; program: Program } {
  const { site } = s;
  const socketPath = gunicornSocketPath(site.name);
  const command = [
    path.join(site.venvDir, 'bin', 'python'),
    GUNICORN,
    '--bind', `unix:${socketPath}`,
    '--workers', String(s.workers ?? 2),
    s.module ?? 'example_site.wsgi:application',
  ].join(' ');
  const text = [
    `[program:${site.name}]`,
    `command=${command}`,
    `directory=${site.siteDir}`,
    `user=${site.name}`,
    // supervisord changes only the uid/gid: the environment is its own (root's HOME) unless given.
    `environment=HOME="${site.user.home}",USER="${site.name}",LOGNAME="${site.name}",LANG="C.UTF-8"`,
    'autostart=true',
    ...(s.startsecs !== undefined ? [`startsecs=${s.startsecs}`] : []),
    // supervisord's TERM is gunicorn's graceful shutdown; its workers get graceful_timeout (30 s) but supervisord only stopwaitsecs.
    'stopsignal=TERM',
    'stopwaitsecs=10',
    // gunicorn's workers are its children: with the master killed after stopwaitsecs they must go too.
    'killasgroup=true',
    '',
  ].join('\n');
  return { text, program: { name: site.name, socketPath, proxy: `unix:${socketPath}`, command } };
}

async function ensureDir(d: string, mode: number, uid = 0, gid = 0): Promise<void> {
  await fsp.mkdir(d, { recursive: true, mode });
  await fsp.chown(d, uid, gid);
  await fsp.chmod(d, mode);
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!lab.isAlive(pid)) return true;
    await sleep(50);
  }
  return !lab.isAlive(pid);
}

/** Pids whose command line contains `needle`: our gunicorn processes, found by their socket path. */
function pidsWith(needle: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (/^\d+$/.test(d) && lab.isAlive(Number(d)) && cmdline(Number(d)).includes(needle)) out.push(Number(d));
  }
  return out;
}

/** Stops a supervisord of this lab (ours, by its config path) and anything it left running. */
async function stopSupervisord(pid: number | undefined, programs: string[]): Promise<void> {
  if (pid !== undefined && lab.isAlive(pid) && cmdline(pid).includes(supervisorConfPath())) {
    process.kill(pid, 'SIGTERM'); // supervisord stops its programs (stopwaitsecs each) and exits
    if (!(await waitGone(pid, 30_000))) {
      process.kill(pid, 'SIGKILL');
      await waitGone(pid, 5_000);
    }
  }
  for (const name of programs) {
    for (const p of pidsWith(`unix:${gunicornSocketPath(name)}`)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
  }
}

function readPid(): number | undefined {
  try {
    return Number(fs.readFileSync(pidPath(), 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts supervisord with one gunicorn program per site, each running as its
 * site user from the site's checkout, and a sudoers rule per site for its own
 * restart. Replaces a supervisord this lab left running. The sites' uWSGI
 * vassal files (setupDjangoSite writes them) are removed: these sites are
 * gunicorn's, and no emperor may start a second copy.
 */
export async function startSupervisor(sites: SupervisedSite[]): Promise<Supervisor> {
  await stopSupervisord(readPid(), sites.map((s) => s.site.name));
  await ensureDir(dir(), 0o755);
  // Like Debian's /var/log/supervisor, root's; 0750 so the logs are root's only whatever supervisord's umask makes them.
  await ensureDir(supervisorLogDir(), 0o750);
  const wwwData = await lab.lookupUser(lab.NGINX_USER);
  if (!wwwData) throw new Error(`no ${lab.NGINX_USER} user (nginx not installed?)`);

  const programs: Record<string, Program> = {};
  const sections: string[] = [];
  for (const s of sites) {
    await fsp.rm(s.site.vassalPath, { force: true });
    const socketDir = path.dirname(gunicornSocketPath(s.site.name));
    await ensureDir(path.dirname(socketDir), 0o755);
    await ensureDir(socketDir, 0o750, s.site.user.uid, wwwData.gid);
    const { text, program } = programSection(s);
    programs[s.site.name] = program;
    sections.push(text);
  }

  const conf = supervisorConfPath();
  const logPath = path.join(supervisorLogDir(), 'supervisord.log');
  await fsp.writeFile(
    conf,
    [
      '; Written by deployfile test/lab/supervisor.ts: a supervisord of the lab, loopback and files under its dir only.',
      '[unix_http_server]',
      `file=${ctlSocketPath()}`,
      // Root's only, as Debian ships it; site users restart through sudo (see sudoersPath).
      'chmod=0700',
      '',
      '[supervisord]',
      'nodaemon=true',
      `logfile=${logPath}`,
      `pidfile=${pidPath()}`,
      `childlogdir=${supervisorLogDir()}`,
      '',
      '[rpcinterface:supervisor]',
      'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface',
      '',
      '[supervisorctl]',
      `serverurl=unix://${ctlSocketPath()}`,
      '',
      ...sections,
    ].join('\n'),
    { mode: 0o644 },
  );

  for (const s of sites) {
    const file = sudoersPath(s.site.name);
    fs.writeFileSync(file, `${s.site.name} ALL=(root) NOPASSWD: ${restartArgv(s.site.name).join(' ')}, ${hupArgv(s.site.name).join(' ')}\n`, { mode: 0o440 });
    await lab.run('visudo', ['-c', '-q', '-f', file]);
  }

  const out = fs.openSync(path.join(dir(), 'supervisord.out'), 'a');
  let pid: number;
  try {
    const child = spawn(SUPERVISORD, ['-n', '-c', conf], { cwd: dir(), detached: true, stdio: ['ignore', out, out], env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' } });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    pid = child.pid!;
  } finally {
    fs.closeSync(out);
  }

  const ctl = (args: string[]) =>
    lab.run(SUPERVISORCTL, ['-c', conf, ...args]).then(
      ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
      (e: { stdout?: string; stderr?: string; cause?: { code?: unknown } }) => ({ code: typeof e.cause?.code === 'number' ? e.cause.code : 1, output: (e.stdout ?? '') + (e.stderr ?? '') }),
    );
  const state = async (name: string) => /^\S+\s+(\S+)/.exec((await ctl(['status', name])).output)?.[1] ?? 'UNKNOWN';
  const stderrTail = async (name: string, bytes = 3000) => (await ctl(['tail', `-${bytes}`, name, 'stderr'])).output;
  const waitForState = async (name: string, want: string, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (!lab.isAlive(pid)) throw new Error(`supervisord exited; log ${logPath}:\n${fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8').slice(-2000) : ''}`);
      last = await state(name);
      if (last === want) return;
      await sleep(200);
    }
    throw new Error(`${name} not ${want} after ${timeoutMs} ms (is ${last}); its stderr:\n${await stderrTail(name)}`);
  };

  const names = sites.map((s) => s.site.name);
  const stop = async () => {
    await stopSupervisord(pid, names);
    for (const n of names) fs.rmSync(sudoersPath(n), { force: true });
  };
  try {
    for (const name of names) {
      await waitForState(name, 'RUNNING');
      await lab.waitForSocket(programs[name]!.socketPath);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { pid, conf, ctlSocket: ctlSocketPath(), logDir: supervisorLogDir(), logPath, programs, ctl, state, waitForState, stderrTail, stop };
}
