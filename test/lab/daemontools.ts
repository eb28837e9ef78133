/**
 * A Django site served over FastCGI by uWSGI, supervised by daemontools, as
 * in "Deploying a Django Site using FastCGI" (Florenzano): svscan watches a
 * service directory, each site has a `run` script that execs the FastCGI
 * server as the site user, and nginx talks to it with fastcgi_pass. flup and
 * `manage.py runfcgi` are gone, so the FastCGI server is uWSGI's
 * `--fastcgi-socket`; like the article's `host=127.0.0.1 port=8080` it
 * listens on loopback TCP, which also spares a socket directory the site
 * user and nginx must share.
 *
 * runit (startRunsvdir) is the same shape with other names: runsvdir for
 * svscan, runsv for supervise, `chpst -u` for setuidgid, svlogd for
 * multilog, `sv restart` for `svc -t`. `sv restart` sends TERM, CONT and
 * up, then waits (7 s at most) until runsv reports the service running
 * again, i.e. the new uWSGI started, not that it loaded the app; it also
 * reads the log service's state, so the site user needs that one too.
 * runit's package (Debian 12, without runit-init) starts no runsvdir either.
 *
 * The scanner runs on a scan directory under labDir(), not /etc/service, so
 * nothing else on the machine is supervised or disturbed.
 *
 * What the stack does (measured here, Debian 12: daemontools 0.76, uWSGI 2.0.21):
 * - Logs: the run script's stdout/stderr are supervise's, i.e. svscan's
 *   (under svscanboot that is readproctitle: the last bytes show in `ps`
 *   and nowhere else). So each service has a `log/run` with multilog, which
 *   svscan pipes the run script's output into; multilog runs as the site
 *   user and writes logDir(site)/current (tai64n stamps), which the site
 *   user can read. The run script does `exec 2>&1`: uWSGI logs to stderr.
 * - `svc -t`: supervise sends SIGTERM to the run script's process (uWSGI's
 *   master, the run script exec'd it). Without --die-on-term uWSGI 2.0 takes
 *   TERM as a "brutal reload": it re-execs itself in place, same pid, with
 *   its old argv (an edited run script is not read) and the listening
 *   socket inherited; supervise sees nothing, svstat's uptime goes on, and
 *   even `svc -d` (TERM, CONT) leaves it up; only `svc -k` or `svc -i` end it. With
 *   --die-on-term the master kills its workers and exits; supervise starts
 *   `run` again at once (it only waits 1 s if the previous start was less
 *   than 1 s ago). The listening socket is closed in between: nginx
 *   answers 502 (error.log: "Connection refused", or "reset by peer" for a
 *   connection the dying master had queued), 2 to 4 GETs at 50 ms here, until
 *   the new master binds it; then requests wait in the listen backlog while
 *   Django imports (no errors), and the first 200 comes 2 to 4 s after `svc -t`.
 * - An app that does not import: uWSGI (without --need-app) keeps running
 *   with no app; over FastCGI it answers every request with 500 and logs
 *   "--- no python application found, check your startup logs for errors ---".
 *   supervise sees a healthy process, so nothing restarts it; nginx passes
 *   the 500 on. With --need-app uWSGI exits instead, and supervise starts
 *   it again about once a second (svstat: "up (pid N) 1 seconds", a new pid
 *   each time; the log repeats the ImportError); nginx answers 502 when
 *   nothing listens.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as lab from './lab.ts';

export const SVSCAN = '/usr/bin/svscan';
export const SVC = '/usr/bin/svc';
export const RUNSVDIR = '/usr/bin/runsvdir';
export const SV = '/usr/bin/sv';

/** Which supervision suite runs the services: daemontools (svscan) or runit (runsvdir). */
export type Suite = 'daemontools' | 'runit';

const suites = {
  daemontools: { scanner: SVSCAN, supervise: 'supervise', asUser: 'setuidgid', logger: (dir: string) => `multilog t s1000000 n5 ${dir}` },
  runit: { scanner: RUNSVDIR, supervise: 'runsv', asUser: 'chpst -u', logger: (dir: string) => `svlogd -tt ${dir}` },
} as const;

export interface ServiceSiteOptions {
  site: lab.DjangoSite;
  /** Python package holding wsgi.py, e.g. "example_site". */
  settingsPackage: string;
  /** Loopback port of the FastCGI socket; a free one when omitted. */
  port?: number;
  processes?: number;
}

export interface ServiceSite {
  name: string;
  /** host:port, what nginx's fastcgi_pass and deployfile's app.socket name. */
  socket: string;
  /** The service directory svscan supervises (what `svc -t` is given). */
  dir: string;
  /** multilog's directory: `current` holds the app's log. */
  logDir: string;
}

export interface Svscan {
  suite: Suite;
  pid: number;
  scanDir: string;
  sites: Record<string, ServiceSite>;
  serviceDir(site: string): string;
  logDir(site: string): string;
  /** Ends svscan, every supervise, multilog and the apps' uWSGI processes. */
  stop(): Promise<void>;
}

export function scanDir(suite: Suite = 'daemontools'): string {
  return path.join(lab.labDir(), suite === 'daemontools' ? 'service' : 'runit-service');
}

function logDirOf(suite: Suite, site: string): string {
  return path.join(lab.labDir(), 'log', suite, site);
}

/** The run script as an operator writes it: the site user's uWSGI in the foreground, speaking FastCGI. */
export function runScript(o: { suite?: Suite; user: lab.UnixUser; siteDir: string; venvDir: string; module: string; socket: string; processes: number }): string {
  const suite = suites[o.suite ?? 'daemontools'];
  return [
    '#!/bin/sh',
    `# Written by deployfile test/lab/daemontools.ts: ${suite.supervise} runs this as root.`,
    '# uWSGI logs to stderr; log/run reads stdout.',
    'exec 2>&1',
    // setuidgid/chpst change the ids only; HOME and LANG are the scanner's unless set.
    // --die-on-term: otherwise `svc -t` is a reload in place supervise never sees.
    `exec ${suite.asUser} ${o.user.name} env HOME=${o.user.home} LANG=C.UTF-8 /usr/bin/uwsgi --plugin python3 \\`,
    `  --fastcgi-socket ${o.socket} --chdir ${o.siteDir} --virtualenv ${o.venvDir} \\`,
    `  --module ${o.module} --master --processes ${o.processes} --die-on-term`,
    '',
  ].join('\n');
}

function logRunScript(suite: Suite, user: string, dir: string): string {
  const s = suites[suite];
  return ['#!/bin/sh', '# The site user owns its log, so a deploy run as that user can read it.', `exec ${s.asUser} ${user} ${s.logger(dir)}`, ''].join('\n');
}

async function writeExecutable(file: string, text: string): Promise<void> {
  await fsp.writeFile(file, text, { mode: 0o755 });
  await fsp.chmod(file, 0o755);
}

/**
 * Lets the site user run `svc` and `svstat` (runit: `sv`) on its own service,
 * by making supervise's control and ok FIFOs its own (supervise and runsv
 * keep FIFOs that exist and make missing ones root's, mode 600). Chosen over a sudoers rule
 * (`<site> ALL=(root) NOPASSWD: /usr/bin/svc -t <dir>`): the site user can
 * already kill its own uWSGI, so the FIFO grants it nothing over other
 * services or root, and `svc -t <dir>` then works as written, with no sudo
 * and no rule that breaks when the path is written with a trailing slash.
 */
async function delegateControl(dir: string, user: lab.UnixUser): Promise<void> {
  const supervise = path.join(dir, 'supervise');
  await fsp.mkdir(supervise, { recursive: true });
  // 711: the site user reaches the FIFOs and status by name and lists nothing.
  await fsp.chmod(supervise, 0o711);
  for (const fifo of ['control', 'ok']) {
    const f = path.join(supervise, fifo);
    await fsp.rm(f, { force: true });
    await lab.run('mkfifo', ['-m', '600', f]);
    await fsp.chown(f, user.uid, user.gid);
  }
}

/** The site user's uWSGI processes (master and workers), by /proc. */
export function appPids(user: lab.UnixUser): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const status = fs.readFileSync(`/proc/${d}/status`, 'utf8');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      const name = /^Name:\s+(\S+)/m.exec(status)?.[1];
      const state = /^State:\s+(\S)/m.exec(status)?.[1];
      if (uid === user.uid && name === 'uwsgi' && state !== 'Z') out.push(Number(d));
    } catch {
      // Gone.
    }
  }
  return out;
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

/**
 * Starts svscan on scanDir() with one service per site (replacing the
 * directory of an earlier run). Resolves once every site's uWSGI answers on
 * its socket's port (not necessarily with a loaded app).
 */
export function startSvscan(sites: ServiceSiteOptions[]): Promise<Svscan> {
  return startScanner('daemontools', sites);
}

/** startSvscan with runit: runsvdir on scanDir('runit'); restart with `sv restart <dir>`. */
export function startRunsvdir(sites: ServiceSiteOptions[]): Promise<Svscan> {
  return startScanner('runit', sites);
}

async function startScanner(suite: Suite, sites: ServiceSiteOptions[]): Promise<Svscan> {
  const scan = scanDir(suite);
  await fsp.rm(scan, { recursive: true, force: true });
  await fsp.mkdir(scan, { recursive: true, mode: 0o755 });
  const out: Record<string, ServiceSite> = {};
  for (const s of sites) {
    const { name, user } = s.site;
    const dir = path.join(scan, name);
    const logDir = logDirOf(suite, name);
    const socket = `${lab.LOOPBACK}:${s.port ?? (await lab.freePort())}`;
    await fsp.mkdir(path.join(dir, 'log'), { recursive: true, mode: 0o755 });
    await fsp.mkdir(logDir, { recursive: true, mode: 0o755 });
    await fsp.chown(logDir, user.uid, user.gid);
    await writeExecutable(
      path.join(dir, 'run'),
      runScript({ suite, user, siteDir: s.site.siteDir, venvDir: s.site.venvDir, module: `${s.settingsPackage}.wsgi:application`, socket, processes: s.processes ?? 2 }),
    );
    await writeExecutable(path.join(dir, 'log', 'run'), logRunScript(suite, name, logDir));
    // The log service's too: `sv status` reports it and fails when it cannot read it.
    await delegateControl(dir, user);
    await delegateControl(path.join(dir, 'log'), user);
    out[name] = { name, socket, dir, logDir };
  }

  const scanner = suites[suite].scanner;
  const stderr = path.join(lab.labDir(), 'log', `${path.basename(scanner)}.log`);
  const fd = fs.openSync(stderr, 'a');
  // As svscanboot does: a bare environment, so the apps do not inherit root's.
  const child = spawn(scanner, [scan], { cwd: scan, detached: true, stdio: ['ignore', fd, fd], env: { PATH: '/usr/local/bin:/usr/bin:/bin' } });
  fs.closeSync(fd);
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  child.unref();
  const pid = child.pid!;
  const pidFile = path.join(lab.labDir(), `${path.basename(scanner)}.pid`);
  await fsp.writeFile(pidFile, String(pid));

  const svscan: Svscan = {
    suite,
    pid,
    scanDir: scan,
    sites: out,
    serviceDir: (site) => out[site]!.dir,
    logDir: (site) => out[site]!.logDir,
    stop: () => stopScanner(suite, pid, pidFile, Object.values(out), sites.map((s) => s.site.user)),
  };
  try {
    for (const s of Object.values(out)) await waitForTcp(s.socket, 30_000);
  } catch (e) {
    await svscan.stop();
    throw e;
  }
  return svscan;
}

async function waitForTcp(socket: string, timeoutMs: number): Promise<void> {
  const [host, port] = socket.split(':');
  const net = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect({ host, port: Number(port) });
      c.once('connect', () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listening on ${socket} after ${timeoutMs} ms`);
}

/**
 * daemontools: svscan first (it would start a supervise again), then `svc
 * -dx` on each service and its log: supervise TERMs uWSGI (which exits,
 * --die-on-term) and exits itself; multilog ends when its pipe closes.
 * runit: HUP makes runsvdir TERM every runsv and exit; a runsv on TERM
 * stops its service, then its log service, and exits.
 */
async function stopScanner(suite: Suite, pid: number, pidFile: string, services: ServiceSite[], users: lab.UnixUser[]): Promise<void> {
  try {
    process.kill(pid, suite === 'runit' ? 'SIGHUP' : 'SIGTERM');
  } catch {
    // Already gone.
  }
  await waitFor(() => !lab.isAlive(pid), 5_000);
  if (suite === 'daemontools') {
    for (const s of services) {
      await lab.run(SVC, ['-dx', s.dir]).catch(() => undefined);
      await lab.run(SVC, ['-dx', path.join(s.dir, 'log')]).catch(() => undefined);
    }
  }
  for (const u of users) {
    if (!(await waitFor(() => appPids(u).length === 0, 10_000))) {
      for (const p of appPids(u)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // Gone.
        }
      }
    }
  }
  const superviseGone = () => !superviseRunning(suite, services);
  if (!(await waitFor(superviseGone, 10_000))) throw new Error(`${suites[suite].supervise} still running for ${services.map((s) => s.dir).join(', ')}`);
  await fsp.rm(pidFile, { force: true });
  await fsp.rm(scanDir(suite), { recursive: true, force: true });
}

/** A supervise (runit: runsv) still running in one of these service directories. */
function superviseRunning(suite: Suite, services: ServiceSite[]): boolean {
  const dirs = new Set(services.flatMap((s) => [s.dir, path.join(s.dir, 'log')]));
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv[0] !== suites[suite].supervise) continue;
      const cwd = fs.readlinkSync(`/proc/${d}/cwd`);
      if (dirs.has(cwd) && lab.isAlive(Number(d))) return true;
    } catch {
      // Gone.
    }
  }
  return false;
}
