/**
 * The lab's Apache with mod_fcgid, serving Django sites the way a shared
 * host does: one vhost per site, its FastCGI program started on demand by
 * mod_fcgid through suexec, so it runs as the site user.
 *
 * Debian 12 has no flup, so the FastCGI program is uWSGI itself: mod_fcgid
 * hands the program its listening socket as fd 0, and `--fastcgi-socket
 * fd://0` makes uWSGI answer FastCGI on it (core/socket.c, "fd://"). Each
 * site's entry script is ~/public_html/<site>.fcgi, a shell script that
 * execs uWSGI; see fcgiScript() for why it watches itself.
 *
 * Our own Apache: its own config under labDir()/apache, loopback ports, the
 * Debian module .so files loaded by path; /etc/apache2's sites are never
 * read. Root only. suexec-custom's docroot (first line of
 * /etc/apache2/suexec/www-data, compiled into Debian's suexec) is set to
 * /home while the lab's Apache runs and put back by stop().
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DjangoSite, LOOPBACK, freePort, isAlive, labDir, run } from './lab.ts';

export const APACHE = '/usr/sbin/apache2';
export const APACHE_MODULES = '/usr/lib/apache2/modules';
export const SUEXEC = '/usr/lib/apache2/suexec';
/** suexec-custom reads its docroot and userdir suffix from here (the file is named after Apache's user). */
export const SUEXEC_CONFIG = '/etc/apache2/suexec/www-data';
/** Compiled into Debian's suexec (`suexec -V`: AP_LOG_EXEC); root's, shared by every Apache on the machine. */
export const SUEXEC_LOG = '/var/log/apache2/suexec.log';
export const APACHE_USER = 'www-data';
const UWSGI = '/usr/bin/uwsgi';

export function apacheDir(): string {
  return path.join(labDir(), 'apache');
}
/**
 * A Debian multi-instance config dir (README.multiple-instances) for the
 * lab's Apache: `APACHE_CONFDIR=<it> apachectl graceful` runs `apache2 -d
 * <it> -k graceful`, whose apache2.conf includes the lab's config, so the
 * real apachectl signals the lab's instance, never /etc/apache2's.
 */
export function apacheConfDir(): string {
  return `/etc/apache2-${path.basename(labDir())}`;
}
/** Where a site's FastCGI entry script lives: its vhost's DocumentRoot is ~/public_html. */
export function fcgiScriptPath(site: DjangoSite): string {
  return path.join(site.user.home, 'public_html', `${site.name}.fcgi`);
}

export interface FcgiScriptOptions {
  /** Default true: uWSGI's master watches the script (touch-reload), so `touch <script>` reloads the app. */
  touchReload?: boolean;
}

/**
 * The entry script mod_fcgid runs. mod_fcgid itself never looks at the
 * script's mtime (it keys its process classes by inode, device, command
 * line, vhost and uid/gid: fcgid_bridge.c apply_free_procnode), so touching
 * a plain script changes nothing. With `touchReload`, uWSGI's master watches
 * the script and on a touch re-execs itself, keeping fd 0 (mod_fcgid's
 * socket) and its pid, with new workers: requests queue on the socket
 * meanwhile instead of failing.
 */
export function fcgiScript(site: DjangoSite, settingsPackage: string, opts: FcgiScriptOptions = {}): string {
  const script = fcgiScriptPath(site);
  return [
    '#!/bin/sh',
    `# ${site.name}'s FastCGI program. mod_fcgid runs it through suexec as ${site.name},`,
    "# with its listening socket as fd 0 (no stdin, stdout; stderr is Apache's error log).",
    '# suexec passes only a few safe variables: set what the app needs here.',
    `export HOME=${site.user.home} LANG=C.UTF-8`,
    `exec ${UWSGI} --plugin python3 --fastcgi-socket fd://0 \\`,
    // --die-on-term: mod_fcgid ends its processes with SIGTERM, which a uWSGI master otherwise takes as "reload".
    '  --master --processes 1 --die-on-term \\',
    `  --chdir ${site.siteDir} --virtualenv ${site.venvDir} --module ${settingsPackage}.wsgi:application` + (opts.touchReload === false ? '' : ' \\'),
    ...(opts.touchReload === false ? [] : [`  --touch-reload ${script}`]),
    '',
  ].join('\n');
}

/**
 * Writes the entry script as the site user owns it (suexec refuses a script
 * or directory that is not the target user's, or is writable by others),
 * in place: same inode, so mod_fcgid keeps its process class.
 */
export async function writeFcgiScript(site: DjangoSite, settingsPackage: string, opts: FcgiScriptOptions = {}): Promise<string> {
  const { uid, gid, home } = site.user;
  // www-data must traverse the home (Debian 12's useradd makes it 0700).
  await fsp.chmod(home, (await fsp.stat(home)).mode & 0o7777 | 0o711);
  const dir = path.dirname(fcgiScriptPath(site));
  await fsp.mkdir(dir, { recursive: true });
  await fsp.chown(dir, uid, gid);
  await fsp.chmod(dir, 0o755);
  const script = fcgiScriptPath(site);
  await fsp.writeFile(script, fcgiScript(site, settingsPackage, opts));
  await fsp.chown(script, uid, gid);
  await fsp.chmod(script, 0o755);
  return script;
}

export interface FcgidSite {
  site: DjangoSite;
  settingsPackage: string;
  fcgi?: FcgiScriptOptions;
  /** Free loopback port when omitted. */
  port?: number;
}

export interface ApacheFcgid {
  pid: number;
  configPath: string;
  /** The main server's ErrorLog, root:adm 0640 as on Debian: where mod_fcgid's lines and the programs' stderr go; site users cannot read it. */
  errorLog: string;
  url(site: string): string;
  script(site: string): string;
  /** What `apachectl graceful` runs for this instance (SIGUSR1 to the pid in its PidFile), as a shell line. */
  gracefulCommand: string;
  /** Set APACHE_CONFDIR to this and Debian's `apachectl` acts on this instance (apacheConfDir()). */
  confDir: string;
  /** pids of the site's FastCGI processes (uWSGI master and worker), run by mod_fcgid as the site user. */
  processes(site: string): number[];
  stop(): Promise<void>;
}

interface ProcInfo {
  pid: number;
  ppid: number;
  uid: number;
  argv: string[];
}

function procs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest[0] === 'Z') continue;
      const uid = Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${d}/status`, 'utf8'))?.[1]);
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(d), ppid: Number(rest[1]), uid, argv });
    } catch {
      // Gone.
    }
  }
  return out;
}

/** A site's FastCGI processes: its user's uWSGI processes started from its entry script's command line. */
function fcgidProcesses(site: DjangoSite): number[] {
  return procs()
    .filter((p) => p.uid === site.user.uid && p.argv[0] === UWSGI && p.argv.includes('fd://0') && p.argv.includes(site.siteDir))
    .map((p) => p.pid);
}

async function waitGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter(isAlive);
  while (alive.length && Date.now() < deadline) {
    await sleep(100);
    alive = alive.filter(isAlive);
  }
  return alive;
}

/** The Apache a previous run left behind (a crashed test): only ours, recognised by its config path. */
async function stopLeftover(configPath: string, pidFile: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  const argv = procs().find((p) => p.pid === pid)?.argv ?? [];
  if (!argv.includes(configPath)) return;
  process.kill(pid, 'SIGTERM');
  if ((await waitGone([pid], 15_000)).length) process.kill(pid, 'SIGKILL');
}

/**
 * Starts the lab's Apache with one vhost per site, each on its own loopback
 * port, everything under it mapped to the site's entry script (PATH_INFO is
 * the URL path, SCRIPT_NAME empty, as Django wants). Writes each entry script.
 * One instance per lab: starting again replaces a leftover one.
 */
export async function startApacheFcgid(sites: FcgidSite[]): Promise<ApacheFcgid> {
  const dir = apacheDir();
  const ipcDir = path.join(dir, 'fcgid');
  const logDir = path.join(dir, 'log');
  const configPath = path.join(dir, 'httpd.conf');
  const pidFile = path.join(dir, 'httpd.pid');
  const errorLog = path.join(logDir, 'error.log');
  await stopLeftover(configPath, pidFile);
  await fsp.mkdir(ipcDir, { recursive: true });
  // mod_fcgid's process manager runs as www-data and binds its sockets here.
  await run('chown', [`${APACHE_USER}:${APACHE_USER}`, ipcDir]);
  await fsp.chmod(ipcDir, 0o755);
  // As Debian's /var/log/apache2: root:adm, so a site user cannot read it.
  await fsp.mkdir(logDir, { recursive: true });
  await run('chown', ['root:adm', logDir]);
  await fsp.chmod(logDir, 0o750);
  fs.closeSync(fs.openSync(errorLog, 'a'));
  await run('chown', ['root:adm', errorLog]);
  await fsp.chmod(errorLog, 0o640);

  const ports: Record<string, number> = {};
  const scripts: Record<string, string> = {};
  const bySite: Record<string, DjangoSite> = {};
  const vhosts: string[] = [];
  for (const s of sites) {
    const port = s.port ?? (await freePort());
    ports[s.site.name] = port;
    bySite[s.site.name] = s.site;
    scripts[s.site.name] = await writeFcgiScript(s.site, s.settingsPackage, s.fcgi);
    const docroot = path.dirname(scripts[s.site.name]!);
    vhosts.push(
      [
        `Listen ${LOOPBACK}:${port}`,
        `<VirtualHost ${LOOPBACK}:${port}>`,
        `  ServerName ${s.site.name}`,
        `  DocumentRoot ${docroot}`,
        // mod_fcgid asks suexec to run the script as this user (procmgr_init_spawn_cmd: ap_run_get_suexec_identity).
        `  SuexecUserGroup ${s.site.name} ${s.site.name}`,
        `  Alias / ${scripts[s.site.name]}/`,
        `  <Directory ${docroot}>`,
        '    Require all granted',
        '    Options +ExecCGI',
        '    SetHandler fcgid-script',
        '  </Directory>',
        '</VirtualHost>',
      ].join('\n'),
    );
  }
  const mod = (name: string, file: string) => `LoadModule ${name}_module ${path.join(APACHE_MODULES, file)}`;
  await fsp.writeFile(
    configPath,
    [
      '# Written by deployfile test/lab/apache-fcgid.ts; loopback only.',
      `ServerRoot ${dir}`,
      `ServerName ${LOOPBACK}`,
      `PidFile ${pidFile}`,
      `ErrorLog ${errorLog}`,
      // info: mod_fcgid's "server ... started" and "process ... exit(...)" lines.
      'LogLevel info',
      `User ${APACHE_USER}`,
      `Group ${APACHE_USER}`,
      `Mutex file:${dir} default`,
      mod('mpm_event', 'mod_mpm_event.so'),
      mod('authz_core', 'mod_authz_core.so'),
      mod('mime', 'mod_mime.so'),
      'TypesConfig /etc/mime.types',
      mod('alias', 'mod_alias.so'),
      mod('suexec', 'mod_suexec.so'),
      mod('fcgid', 'mod_fcgid.so'),
      `FcgidIPCDir ${ipcDir}`,
      `FcgidProcessTableFile ${path.join(ipcDir, 'shm')}`,
      '<Directory />',
      '  AllowOverride None',
      '  Require all denied',
      '</Directory>',
      ...vhosts,
      '',
    ].join('\n'),
  );

  const suexecSaved = path.join(dir, 'suexec-www-data.orig');
  if (!fs.existsSync(suexecSaved)) await fsp.copyFile(SUEXEC_CONFIG, suexecSaved);
  const suexecLines = fs.readFileSync(suexecSaved, 'utf8').split('\n');
  await fsp.writeFile(SUEXEC_CONFIG, ['/home', ...suexecLines.slice(1)].join('\n'));
  const restoreSuexec = async () => {
    if (fs.existsSync(suexecSaved)) {
      await fsp.copyFile(suexecSaved, SUEXEC_CONFIG);
      await fsp.rm(suexecSaved);
    }
  };

  const confDir = apacheConfDir();
  await fsp.mkdir(confDir, { recursive: true });
  await fsp.writeFile(path.join(confDir, 'apache2.conf'), `# Written by deployfile test/lab/apache-fcgid.ts: apachectl with APACHE_CONFDIR=${confDir} acts on the lab's Apache.\nInclude ${configPath}\n`);
  const removeConfDir = () => fsp.rm(confDir, { recursive: true, force: true });

  try {
    await run(APACHE, ['-f', configPath, '-t']);
  } catch (e) {
    await restoreSuexec();
    await removeConfDir();
    throw e;
  }
  const out = fs.openSync(path.join(logDir, 'apache2.out'), 'a');
  const child = spawn(APACHE, ['-f', configPath, '-DFOREGROUND'], { cwd: dir, detached: true, stdio: ['ignore', out, out], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' } });
  fs.closeSync(out);
  let exited = false;
  child.once('exit', () => (exited = true));
  child.unref();
  const pid = child.pid!;

  const allProcesses = () => Object.values(bySite).flatMap(fcgidProcesses);
  const stop = async () => {
    // Apache's SIGTERM ends mod_fcgid's process manager, which ends every
    // FastCGI process (fcgid_pm_main.c kill_all_subprocess: SIGTERM, SIGKILL after 8 s).
    const fcgid = allProcesses();
    if (isAlive(pid)) {
      process.kill(pid, 'SIGTERM');
      if ((await waitGone([pid], 20_000)).length) process.kill(pid, 'SIGKILL');
    }
    for (const left of await waitGone(fcgid, 10_000)) process.kill(left, 'SIGKILL');
    await restoreSuexec();
    await removeConfDir();
  };

  const deadline = Date.now() + 15_000;
  for (const port of Object.values(ports)) {
    for (;;) {
      if (exited) {
        await restoreSuexec();
        await removeConfDir();
        throw new Error(`apache2 exited at start; ${errorLog}:\n${fs.readFileSync(errorLog, 'utf8').split('\n').slice(-20).join('\n')}`);
      }
      // A TCP connect, not a request: a request would start the site's program.
      const ok = await new Promise<boolean>((resolve) => {
        const sock = net.connect({ host: LOOPBACK, port }, () => (sock.destroy(), resolve(true)));
        sock.once('error', () => resolve(false));
      });
      if (ok) break;
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`apache2 not listening on ${LOOPBACK}:${port} after 15 s; ${errorLog}`);
      }
      await sleep(100);
    }
  }

  return {
    pid,
    configPath,
    errorLog,
    url: (site) => `http://${LOOPBACK}:${ports[site]}/`,
    script: (site) => scripts[site]!,
    gracefulCommand: `${APACHE} -f ${configPath} -k graceful`,
    confDir,
    processes: (site) => fcgidProcesses(bySite[site]!),
    stop,
  };
}
