/**
 * End-to-end lab: real OpenSSH, uWSGI (emperor, tyrant mode) and nginx on
 * 127.0.0.1, with one Unix account per Django site, as deployfile targets
 * them in production. Root only (it creates users and vassal files).
 *
 * Every daemon is our own instance with its own config, logs and pid under
 * labDir(); the distribution's services are never started or touched.
 * Started processes are recorded in labDir()/run so that teardown() also
 * works from another process (the CLI's `down`).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const LOOPBACK = '127.0.0.1';
/**
 * The emperor's vassal directory. DEPLOYFILE_VASSAL_DIR gives a second lab
 * (its own DEPLOYFILE_LAB_DIR) its own emperor, so two labs can run at once.
 */
export const VASSAL_DIR = path.resolve(process.env.DEPLOYFILE_VASSAL_DIR || '/etc/uwsgi/emperor.d');
export const UWSGI_GROUP = 'uwsgi';
export const NGINX_USER = 'www-data';
export const SSHD = '/usr/sbin/sshd';
export const UWSGI = '/usr/bin/uwsgi';
export const NGINX = '/usr/sbin/nginx';
/** Debian's interpreter: the one with python3-django and the one uWSGI's python3 plugin embeds (PATH may hold pyenv shims). */
export const SYSTEM_PYTHON = '/usr/bin/python3';
/** A PATH without root's extras (pyenv, nvm), so site-user commands see what an SSH login sees. */
const PLAIN_PATH = '/usr/local/bin:/usr/bin:/bin';

// ---------------------------------------------------------------------------
// Paths

/** Root-owned and world-traversable: site users clone the origins from here and nginx reaches the sockets. */
export function labDir(): string {
  return path.resolve(process.env.DEPLOYFILE_LAB_DIR || '/var/tmp/deployfile-lab');
}

const p = {
  run: () => path.join(labDir(), 'run'),
  operator: () => path.join(labDir(), 'operator'),
  hostKeys: () => path.join(labDir(), 'ssh', 'host-keys'),
  sshd: (port: number) => path.join(labDir(), 'ssh', `sshd-${port}`),
  knownHosts: () => path.join(labDir(), 'known_hosts'),
  origins: () => path.join(labDir(), 'origins'),
  work: () => path.join(labDir(), 'work'),
  sockets: () => path.join(labDir(), 'sockets'),
  logs: () => path.join(labDir(), 'log'),
  nginx: () => path.join(labDir(), 'nginx'),
  users: () => path.join(labDir(), 'users.json'),
  state: () => path.join(labDir(), 'lab.json'),
};

/** Shared by all lab sshd instances, so one known_hosts file serves them all. */
export function knownHostsPath(): string {
  return p.knownHosts();
}
export function vassalPath(site: string): string {
  return path.join(VASSAL_DIR, `${site}.ini`);
}
export function socketPath(site: string): string {
  return path.join(p.sockets(), `${site}.sock`);
}
/**
 * A vassal's own log, owned by the site user so tasks run over SSH can read
 * it. Only used when the vassal is written with `logto` (setupDjangoSite's
 * `vassalLog: true`); by default vassals log into the emperor's log, as in
 * the blog post's skeleton.
 */
export function siteLogPath(site: string): string {
  return path.join(p.logs(), 'uwsgi', `${site}.log`);
}
/** root's, mode 0600: site users cannot read it, as on a server where the emperor logs to a root-owned file. */
export function emperorLogPath(): string {
  return path.join(p.logs(), 'emperor.log');
}
/** Written by the CLI's `up` for the benchmark and humans. */
export function labStatePath(): string {
  return p.state();
}

async function ensureDir(dir: string, mode = 0o755): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode });
  await fsp.chmod(dir, mode);
}

async function ensureLabDir(): Promise<string> {
  const dir = labDir();
  await ensureDir(dir, 0o755);
  const st = await fsp.stat(dir);
  if (st.uid !== 0) throw new Error(`lab dir ${dir} must be owned by root (is uid ${st.uid})`);
  return dir;
}

// ---------------------------------------------------------------------------
// Commands

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  input?: string;
  timeoutMs?: number;
}

/** execFile with the command, exit status and stderr in the error, since lab failures are mostly read in CI logs. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        uid: opts.uid,
        gid: opts.gid,
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException & { code?: unknown }).code;
          const msg = `${cmd} ${args.join(' ')} failed (${code ?? err.message})${stderr ? `:\n${stderr.trim()}` : ''}`;
          reject(Object.assign(new Error(msg), { stdout, stderr, cause: err }));
        } else resolve({ stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export interface UnixUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export async function lookupUser(name: string): Promise<UnixUser | undefined> {
  try {
    const { stdout } = await run('getent', ['passwd', name]);
    const f = stdout.trim().split(':');
    return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? `/home/${name}` };
  } catch {
    return undefined;
  }
}

async function groupExists(name: string): Promise<boolean> {
  return run('getent', ['group', name]).then(
    () => true,
    () => false,
  );
}

async function groupId(name: string): Promise<number> {
  const { stdout } = await run('getent', ['group', name]);
  return Number(stdout.split(':')[2]);
}

/** Runs as the site user with a login-like environment (HOME, plain PATH), the way deployfile's SSH commands will. */
export async function runAs(user: string, cmd: string, args: string[], opts: Omit<RunOptions, 'uid' | 'gid'> = {}) {
  const u = await lookupUser(user);
  if (!u) throw new Error(`no such user: ${user}`);
  return run(cmd, args, {
    ...opts,
    uid: u.uid,
    gid: u.gid,
    cwd: opts.cwd ?? u.home,
    env: { HOME: u.home, USER: u.name, LOGNAME: u.name, PATH: PLAIN_PATH, LANG: 'C.UTF-8', ...opts.env },
  });
}

function assertName(name: string): void {
  // Names become Unix accounts, paths and nginx/uWSGI config values.
  if (!/^[a-z][a-z0-9_-]{0,30}$/.test(name)) throw new Error(`invalid lab site/user name: ${JSON.stringify(name)}`);
}

// ---------------------------------------------------------------------------
// Process registry

interface ProcRecord {
  kind: 'sshd' | 'emperor' | 'nginx';
  id: string;
  pid: number;
  /** /proc/<pid>/stat start time: guards against killing a recycled pid. */
  starttime: string;
  exe: string;
}

function procStat(pid: number): { state: string; starttime: string } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parens; fields resume after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', starttime: rest[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** Zombies count as gone: orphaned lab daemons may never be reaped where PID 1 is not a real init. */
export function isAlive(pid: number): boolean {
  const st = procStat(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X';
}

function recordFile(kind: string, id: string): string {
  return path.join(p.run(), `${kind}-${id}.json`);
}

async function record(rec: ProcRecord): Promise<void> {
  await ensureDir(p.run(), 0o755);
  await fsp.writeFile(recordFile(rec.kind, rec.id), JSON.stringify(rec));
}

async function records(kind?: ProcRecord['kind']): Promise<ProcRecord[]> {
  let names: string[];
  try {
    names = await fsp.readdir(p.run());
  } catch {
    return [];
  }
  const out: ProcRecord[] = [];
  for (const n of names.filter((n) => n.endsWith('.json'))) {
    try {
      const rec = JSON.parse(await fsp.readFile(path.join(p.run(), n), 'utf8')) as ProcRecord;
      if (!kind || rec.kind === kind) out.push(rec);
    } catch {
      // A half-written record of a process that never started.
    }
  }
  return out;
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

async function stopRecord(rec: ProcRecord, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const st = procStat(rec.pid);
  if (st && st.starttime === rec.starttime && isAlive(rec.pid)) {
    try {
      process.kill(rec.pid, signal);
    } catch {
      // Exited in between.
    }
    if (!(await waitGone(rec.pid, 10_000))) {
      process.kill(rec.pid, 'SIGKILL');
      await waitGone(rec.pid, 5_000);
    }
  }
  await fsp.rm(recordFile(rec.kind, rec.id), { force: true });
}

function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

interface Daemon {
  pid: number;
  rec: ProcRecord;
  /** Set once the process has exited, so readiness waits fail fast with its log. */
  exited: () => boolean;
}

/**
 * Detached, so the CLI's `up` can exit and leave it running; output goes to a
 * log file instead of a pipe for the same reason.
 */
async function spawnDaemon(kind: ProcRecord['kind'], id: string, exe: string, args: string[], logFile: string): Promise<Daemon> {
  await ensureDir(path.dirname(logFile));
  const fd = fs.openSync(logFile, 'a');
  let done = false;
  try {
    const child = spawn(exe, args, { cwd: labDir(), detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, PATH: PLAIN_PATH } });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.once('exit', () => (done = true));
    child.unref();
    const pid = child.pid!;
    const rec: ProcRecord = { kind, id, pid, starttime: procStat(pid)?.starttime ?? '', exe };
    await record(rec);
    return { pid, rec, exited: () => done || !isAlive(pid) };
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------------------
// Ports

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, LOOPBACK, resolve);
  });
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Resolves with the first bytes the server sends (if any) once a TCP connect succeeds. */
function probe(port: number, wantBanner: boolean): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: LOOPBACK, port });
    const finish = (v: string | undefined) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(2_000, () => finish(undefined));
    sock.once('error', () => finish(undefined));
    sock.once('connect', () => {
      if (!wantBanner) finish('');
    });
    sock.once('data', (d) => finish(d.toString('latin1')));
  });
}

async function waitForPort(port: number, d: Daemon, logFile: string, banner?: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (d.exited()) {
      await fsp.rm(recordFile(d.rec.kind, d.rec.id), { force: true });
      throw new Error(`${d.rec.exe} exited before listening on ${LOOPBACK}:${port}; log ${logFile}:\n${tail(logFile)}`);
    }
    const got = await probe(port, banner !== undefined);
    if (got !== undefined && (banner === undefined || got.startsWith(banner))) return;
    await sleep(50);
  }
  throw new Error(`${d.rec.exe} not listening on ${LOOPBACK}:${port} after ${timeoutMs} ms; log ${logFile}:\n${tail(logFile)}`);
}

// ---------------------------------------------------------------------------
// Operator key

export interface OperatorKey {
  privateKeyPath: string;
  publicKeyPath: string;
  /** One authorized_keys line. */
  publicKey: string;
}

/** The key the tests and the benchmark deploy with; reused so repeated runs keep working clones and agents happy. */
export async function createOperatorKey(): Promise<OperatorKey> {
  await ensureLabDir();
  const dir = p.operator();
  await ensureDir(dir, 0o700);
  const privateKeyPath = path.join(dir, 'id_ed25519');
  const publicKeyPath = `${privateKeyPath}.pub`;
  if (!fs.existsSync(privateKeyPath) || !fs.existsSync(publicKeyPath)) {
    await fsp.rm(privateKeyPath, { force: true });
    await fsp.rm(publicKeyPath, { force: true });
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'deployfile-lab-operator', '-f', privateKeyPath]);
  }
  await fsp.chmod(privateKeyPath, 0o600);
  return { privateKeyPath, publicKeyPath, publicKey: (await fsp.readFile(publicKeyPath, 'utf8')).trim() };
}

// ---------------------------------------------------------------------------
// Site users

async function readCreatedUsers(): Promise<string[]> {
  try {
    return JSON.parse(await fsp.readFile(p.users(), 'utf8')) as string[];
  } catch {
    return [];
  }
}

export interface SiteUserOptions {
  authorizedKeys: string[];
}

/**
 * Idempotent: an existing account is reused and its keys rewritten. Only
 * accounts created here are recorded, so purgeLab() never deletes a user it
 * did not make.
 */
export async function createSiteUser(name: string, opts: SiteUserOptions): Promise<UnixUser> {
  assertName(name);
  await ensureLabDir();
  let user = await lookupUser(name);
  if (!user) {
    await run('useradd', ['-m', '-s', '/bin/bash', '-U', name]);
    const created = await readCreatedUsers();
    if (!created.includes(name)) await fsp.writeFile(p.users(), JSON.stringify([...created, name]));
    user = (await lookupUser(name))!;
  }
  // useradd leaves '!' (locked), which sshd refuses under UsePAM no; '*' only rules out password logins.
  await run('usermod', ['-p', '*', name]);

  const sshDir = path.join(user.home, '.ssh');
  await ensureDir(sshDir, 0o700);
  await fsp.chown(sshDir, user.uid, user.gid);
  const ak = path.join(sshDir, 'authorized_keys');
  await fsp.writeFile(ak, opts.authorizedKeys.map((k) => k.trim() + '\n').join(''), { mode: 0o600 });
  await fsp.chmod(ak, 0o600);
  await fsp.chown(ak, user.uid, user.gid);

  // The origins and the operator's clones belong to root: without this git stops with "dubious ownership".
  await runAs(name, 'git', ['config', '--global', '--replace-all', 'safe.directory', '*']);
  return user;
}

// ---------------------------------------------------------------------------
// sshd

export interface SshdOptions {
  /** Free loopback port when omitted. */
  port?: number;
  /**
   * sshd_config text. Keywords given here replace the lab's defaults (sshd
   * keeps the first value it reads, so appending would be ignored); any
   * Match blocks go last.
   */
  extraConfig?: string;
  /** Defaults to labDir()/ssh/host-keys, shared by all lab sshd instances. */
  hostKeyDir?: string;
}

export interface HostKey {
  type: string;
  /** Base64 key blob, as in known_hosts. */
  key: string;
  /** OpenSSH style, "SHA256:..." without padding. */
  fingerprint: string;
  path: string;
}

export interface Sshd {
  host: string;
  port: number;
  pid: number;
  configPath: string;
  logPath: string;
  hostKeys: HostKey[];
  hostKeyFingerprints: string[];
  /** "[127.0.0.1]:port type key" lines, also merged into knownHostsPath. */
  knownHostsLines: string[];
  knownHostsPath: string;
  stop(): Promise<void>;
}

const HOST_KEY_TYPES = ['ed25519', 'ecdsa', 'rsa'] as const;

async function ensureHostKeys(dir: string): Promise<HostKey[]> {
  await ensureDir(dir, 0o700);
  const keys: HostKey[] = [];
  for (const t of HOST_KEY_TYPES) {
    const file = path.join(dir, `ssh_host_${t}_key`);
    if (!fs.existsSync(file) || !fs.existsSync(`${file}.pub`)) {
      await fsp.rm(file, { force: true });
      await fsp.rm(`${file}.pub`, { force: true });
      await run('ssh-keygen', ['-q', '-t', t, '-N', '', '-C', 'deployfile-lab-host', '-f', file]);
    }
    await fsp.chmod(file, 0o600);
    const [type, key] = (await fsp.readFile(`${file}.pub`, 'utf8')).trim().split(/\s+/);
    if (!type || !key) throw new Error(`unreadable host key ${file}.pub`);
    const fingerprint = 'SHA256:' + createHash('sha256').update(Buffer.from(key, 'base64')).digest('base64').replace(/=+$/, '');
    keys.push({ type, key, fingerprint, path: file });
  }
  return keys;
}

function keywordsOf(config: string): Set<string> {
  const out = new Set<string>();
  for (const line of config.split('\n')) {
    const m = /^\s*([A-Za-z]+)/.exec(line);
    if (m?.[1] && !line.trim().startsWith('#')) out.add(m[1].toLowerCase());
  }
  return out;
}

async function upsertKnownHosts(port: number, lines: string[]): Promise<void> {
  const prefix = `[${LOOPBACK}]:${port} `;
  let existing: string[] = [];
  try {
    existing = (await fsp.readFile(p.knownHosts(), 'utf8')).split('\n').filter((l) => l && !l.startsWith(prefix));
  } catch {
    // First sshd of this lab.
  }
  await fsp.writeFile(p.knownHosts(), [...existing, ...lines].join('\n') + '\n', { mode: 0o644 });
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  await ensureLabDir();
  // Privilege separation directory; normally made by the systemd unit we don't use.
  await ensureDir('/run/sshd', 0o755);
  const port = opts.port ?? (await freePort());
  const hostKeys = await ensureHostKeys(opts.hostKeyDir ?? p.hostKeys());
  const dir = p.sshd(port);
  await ensureDir(dir, 0o755);
  const configPath = path.join(dir, 'sshd_config');
  const logPath = path.join(dir, 'sshd.log');
  const pidFile = path.join(dir, 'sshd.pid');

  const extra = opts.extraConfig ?? '';
  const matchAt = extra.search(/^\s*Match\s/im);
  const extraGlobal = matchAt >= 0 ? extra.slice(0, matchAt) : extra;
  const extraMatch = matchAt >= 0 ? extra.slice(matchAt) : '';
  const overridden = keywordsOf(extraGlobal);
  for (const k of ['listenaddress', 'port', 'pidfile', 'hostkey']) {
    if (overridden.has(k)) throw new Error(`startSshd: extraConfig may not set ${k}; the lab owns it`);
  }
  const defaults: [string, string][] = [
    ['UsePAM', 'no'],
    ['PasswordAuthentication', 'no'],
    ['KbdInteractiveAuthentication', 'no'],
    ['PubkeyAuthentication', 'yes'],
    ['PermitRootLogin', 'no'],
    ['AuthorizedKeysFile', '.ssh/authorized_keys'],
    ['Subsystem', 'sftp internal-sftp'],
    ['PrintMotd', 'no'],
    ['PrintLastLog', 'no'],
    ['UseDNS', 'no'],
    ['LogLevel', 'INFO'],
  ];
  const config = [
    '# Written by deployfile test/lab; loopback only.',
    `ListenAddress ${LOOPBACK}`,
    `Port ${port}`,
    `PidFile ${pidFile}`,
    ...hostKeys.map((k) => `HostKey ${k.path}`),
    ...defaults.filter(([k]) => !overridden.has(k.toLowerCase())).map(([k, v]) => `${k} ${v}`),
    extraGlobal.trim(),
    extraMatch.trim(),
    '',
  ].join('\n');
  await fsp.writeFile(configPath, config, { mode: 0o644 });
  // Config errors are easier to read from -t than from a daemon that died.
  await run(SSHD, ['-t', '-f', configPath]);

  // The dir is named by port, and an earlier sshd of this lab may have had the port: its log is not this one's.
  await fsp.rm(logPath, { force: true });
  const d = await spawnDaemon('sshd', String(port), SSHD, ['-D', '-e', '-f', configPath], logPath);
  await waitForPort(port, d, logPath, 'SSH-');

  const knownHostsLines = hostKeys.map((k) => `[${LOOPBACK}]:${port} ${k.type} ${k.key}`);
  await upsertKnownHosts(port, knownHostsLines);
  return {
    host: LOOPBACK,
    port,
    pid: d.pid,
    configPath,
    logPath,
    hostKeys,
    hostKeyFingerprints: hostKeys.map((k) => k.fingerprint),
    knownHostsLines,
    knownHostsPath: p.knownHosts(),
    stop: () => stopRecord(d.rec),
  };
}

/**
 * ssh argv for a lab login that trusts only the lab's host keys and offers
 * only the operator key, whatever is in ~/.ssh or an agent.
 */
export function sshArgv(o: { keyPath: string; port: number; user: string; command?: string }): string[] {
  return [
    'ssh',
    '-F', '/dev/null',
    '-i', o.keyPath,
    '-p', String(o.port),
    '-o', 'IdentitiesOnly=yes',
    '-o', 'IdentityAgent=none',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${knownHostsPath()}`,
    `${o.user}@${LOOPBACK}`,
    ...(o.command !== undefined ? [o.command] : []),
  ];
}

// ---------------------------------------------------------------------------
// Git origin

export interface OriginRepo {
  barePath: string;
  /** Root's clone with origin and upstream set; commit and push here to make a new release. */
  workDir: string;
  branch: string;
  /** HEAD right after seeding. */
  initialRevision: string;
}

const GIT_IDENTITY = ['-c', 'user.name=deployfile lab', '-c', 'user.email=lab@deployfile.invalid'];

/**
 * Always a fresh repository with a single commit, so revisions shown by the
 * site depend only on what a test committed since.
 */
export async function createOriginRepo(name: string, fromDir: string, opts: { branch?: string } = {}): Promise<OriginRepo> {
  assertName(name);
  await ensureLabDir();
  const branch = opts.branch ?? 'main';
  if (!fs.existsSync(fromDir)) throw new Error(`createOriginRepo: ${fromDir} does not exist`);
  await ensureDir(p.origins(), 0o755);
  await ensureDir(p.work(), 0o755);
  const barePath = path.join(p.origins(), `${name}.git`);
  const workDir = path.join(p.work(), name);
  await fsp.rm(barePath, { recursive: true, force: true });
  await fsp.rm(workDir, { recursive: true, force: true });

  // 0644: every site user must be able to clone and fetch whatever root pushes.
  await run('git', ['init', '-q', '--bare', '--shared=0644', '-b', branch, barePath]);
  await fsp.cp(fromDir, workDir, {
    recursive: true,
    filter: (src) => !/(^|\/)(\.git|__pycache__|node_modules)$|\.pyc$/.test(src),
  });
  const git = (...args: string[]) => run('git', args, { cwd: workDir });
  await git('init', '-q', '-b', branch);
  await git('config', 'user.name', 'deployfile lab');
  await git('config', 'user.email', 'lab@deployfile.invalid');
  await git('add', '-A');
  await git(...GIT_IDENTITY, 'commit', '-q', '-m', `Initial ${name} from ${path.basename(fromDir)}`);
  await git('remote', 'add', 'origin', barePath);
  await git('push', '-q', '-u', 'origin', branch);
  const initialRevision = (await git('rev-parse', 'HEAD')).stdout.trim();
  return { barePath, workDir, branch, initialRevision };
}

/** Commits everything in the work clone and pushes it; returns the new revision. */
export async function commitAndPush(origin: OriginRepo, message: string): Promise<string> {
  const git = (...args: string[]) => run('git', args, { cwd: origin.workDir });
  await git('add', '-A');
  await git('commit', '-q', '--allow-empty', '-m', message);
  await git('push', '-q');
  return (await git('rev-parse', 'HEAD')).stdout.trim();
}

// ---------------------------------------------------------------------------
// Django site under uWSGI

/**
 * Edit a file of the origin's working copy (commit it with commitAndPush);
 * throws when the edit changes nothing, so a test never ships a no-op.
 *
 * @example editOriginFile(origin, 'example_site/wsgi.py', (py) => `${py}\n# changed\n`)
 */
export function editOriginFile(origin: OriginRepo, file: string, change: (text: string) => string): void {
  const full = path.join(origin.workDir, file);
  const before = fs.readFileSync(full, 'utf8');
  const after = change(before);
  if (after === before) throw new Error(`editing ${file} changed nothing`);
  fs.writeFileSync(full, after);
}

export interface DjangoSiteOptions {
  origin: OriginRepo | string;
  /** Python package holding settings.py and wsgi.py, e.g. "example_site". */
  settingsPackage: string;
  /** pip install --no-index -r REQUIREMENTS in the virtualenv when the file exists (default true). */
  installRequirements?: boolean;
  processes?: number;
  /**
   * Give the vassal `logto` = siteLogPath(), a log its user can read. Default
   * false: no `logto`, like the blog post's app.skel, so the vassal's lines go
   * to the emperor's log, which the site user cannot read.
   */
  vassalLog?: boolean;
  /** More `[uwsgi]` lines for the vassal, e.g. `master-fifo = ...`, `lazy-apps = true`. */
  extraIni?: string[];
}

export interface DjangoSite {
  name: string;
  user: UnixUser;
  siteDir: string;
  venvDir: string;
  vassalPath: string;
  socketPath: string;
  /** Where the vassal's lines go: siteLogPath() with `vassalLog`, else the emperor's log (root's). */
  logPath: string;
}

/** Creates the uwsgi group and lets nginx's workers into it, so they can use the 660 sockets. */
async function ensureUwsgiGroup(): Promise<number> {
  if (!(await groupExists(UWSGI_GROUP))) {
    await run('groupadd', ['--system', UWSGI_GROUP]);
    await fsp.writeFile(path.join(labDir(), 'created-group'), UWSGI_GROUP);
  }
  const { stdout } = await run('id', ['-nG', NGINX_USER]).catch(() => ({ stdout: '' }));
  if (!stdout.split(/\s+/).includes(UWSGI_GROUP)) await run('usermod', ['-aG', UWSGI_GROUP, NGINX_USER]);
  return groupId(UWSGI_GROUP);
}

async function ensureSocketDir(gid: number): Promise<void> {
  // setgid keeps sockets in group uwsgi whatever a vassal's own group is.
  await ensureDir(p.sockets(), 0o2775);
  await fsp.chown(p.sockets(), 0, gid);
  await fsp.chmod(p.sockets(), 0o2775);
}

/**
 * The lab's vassal: the blog post's app.skel with the lab's paths. No
 * `logto` unless `log` is true, so by default the vassal logs to the
 * emperor's log as the skeleton does.
 */
export function vassalIni(s: { name: string; home: string; siteDir: string; venvDir: string; settingsPackage: string; processes?: number; log?: boolean; extra?: string[] }): string {
  return [
    '; Written by deployfile test/lab. Owner (site user) is the uid tyrant mode runs it as;',
    '; touching this file makes the emperor reload the app.',
    '[uwsgi]',
    'plugin = python3',
    'master = true',
    `processes = ${s.processes ?? 2}`,
    `chdir = ${s.siteDir}`,
    `virtualenv = ${s.venvDir}`,
    `module = ${s.settingsPackage}.wsgi:application`,
    `socket = ${socketPath(s.name)}`,
    'chmod-socket = 660',
    'vacuum = true',
    ...(s.log ? [`logto = ${siteLogPath(s.name)}`] : []),
    // The emperor runs as root with root's HOME; give the app its own.
    `env = HOME=${s.home}`,
    `env = LANG=C.UTF-8`,
    ...(s.extra ?? []),
    '',
  ].join('\n');
}

/**
 * Clones the origin as the site user into ~/Sites/<name> (replacing an
 * earlier clone), keeps an existing virtualenv, and writes the vassal. The
 * user must exist (createSiteUser).
 */
export async function setupDjangoSite(name: string, opts: DjangoSiteOptions): Promise<DjangoSite> {
  assertName(name);
  await ensureLabDir();
  const user = await lookupUser(name);
  if (!user) throw new Error(`setupDjangoSite: user ${name} does not exist; call createSiteUser first`);
  const origin = typeof opts.origin === 'string' ? opts.origin : opts.origin.barePath;
  const as = (cmd: string, args: string[], cwd?: string) => runAs(name, cmd, args, { cwd, timeoutMs: 300_000 });

  const sitesDir = path.join(user.home, 'Sites');
  const siteDir = path.join(sitesDir, name);
  const venvDir = path.join(user.home, 'virtualenvs', name);
  await as('mkdir', ['-p', sitesDir, path.dirname(venvDir)]);
  await fsp.rm(siteDir, { recursive: true, force: true });
  await as('git', ['clone', '-q', origin, siteDir]);

  if (!fs.existsSync(path.join(venvDir, 'bin', 'python'))) {
    // System site packages: Debian's python3-django satisfies REQUIREMENTS without network.
    await as(SYSTEM_PYTHON, ['-m', 'venv', '--system-site-packages', venvDir]);
  }
  const req = path.join(siteDir, 'REQUIREMENTS');
  if (opts.installRequirements !== false && fs.existsSync(req)) {
    await as(path.join(venvDir, 'bin', 'pip'), ['install', '-q', '--no-index', '--disable-pip-version-check', '-r', req], siteDir);
  }

  const gid = await ensureUwsgiGroup();
  await ensureSocketDir(gid);
  // Made either way, so a test may switch the vassal to logto later.
  await ensureDir(path.dirname(siteLogPath(name)), 0o755);
  const siteLog = siteLogPath(name);
  if (!fs.existsSync(siteLog)) await fsp.writeFile(siteLog, '');
  await fsp.chown(siteLog, user.uid, user.gid);
  await fsp.chmod(siteLog, 0o644);
  const logPath = opts.vassalLog ? siteLog : emperorLogPath();

  await ensureDir(VASSAL_DIR, 0o755);
  const vp = vassalPath(name);
  await fsp.writeFile(vp, vassalIni({ name, home: user.home, siteDir, venvDir, settingsPackage: opts.settingsPackage, processes: opts.processes, log: opts.vassalLog, extra: opts.extraIni }));
  // Tyrant mode runs the vassal as the file's owner and refuses uid/gid 0.
  await fsp.chown(vp, user.uid, gid);
  await fsp.chmod(vp, 0o644);
  return { name, user, siteDir, venvDir, vassalPath: vp, socketPath: socketPath(name), logPath };
}

/** What a deploy does to reload: bump the vassal's mtime (as the site user, proving it may). */
export async function touchVassal(name: string): Promise<void> {
  await runAs(name, 'touch', [vassalPath(name)]);
}

// ---------------------------------------------------------------------------
// uWSGI emperor

export interface Emperor {
  pid: number;
  logPath: string;
  stop(): Promise<void>;
}

/** A vassal's master: the emperor's child that runs as `uid` (tyrant mode runs it as its ini's owner). */
export function vassalMasterPid(emperor: Emperor, uid: number): number | undefined {
  return childPids(emperor.pid).find((pid) => {
    try {
      return fs.statSync(`/proc/${pid}`).uid === uid;
    } catch {
      return false;
    }
  });
}

function childPids(parent: number): number[] {
  // Vassal masters are the emperor's direct children; stop() waits for them so the sockets are free again.
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) out.push(Number(d));
    } catch {
      // Gone.
    }
  }
  return out;
}

/** One lab emperor at a time: a second one would start every vassal again on the same sockets. */
export async function startEmperor(): Promise<Emperor> {
  await ensureLabDir();
  for (const rec of await records('emperor')) if (rec.id === 'main') await stopEmperorRecord(rec);
  await ensureDir(VASSAL_DIR, 0o755);
  await ensureSocketDir(await ensureUwsgiGroup());
  const logPath = emperorLogPath();
  // Vassals without logto write here: keep it root's, as on a real server,
  // so a deploy (as the site user) cannot read why its vassal failed.
  await ensureDir(path.dirname(logPath), 0o755);
  fs.closeSync(fs.openSync(logPath, 'a', 0o600));
  await fsp.chown(logPath, 0, 0);
  await fsp.chmod(logPath, 0o600);
  const d = await spawnDaemon(
    'emperor',
    'main',
    UWSGI,
    ['--emperor', VASSAL_DIR, '--emperor-tyrant', '--emperor-tyrant-nofollow', '--die-on-term', '--pidfile', path.join(p.run(), 'emperor.pid')],
    logPath,
  );
  await sleep(300);
  if (d.exited()) {
    await fsp.rm(recordFile('emperor', 'main'), { force: true });
    throw new Error(`uwsgi emperor exited at once; log ${logPath}:\n${tail(logPath)}`);
  }
  return { pid: d.pid, logPath, stop: () => stopEmperorRecord(d.rec) };
}

async function stopEmperorRecord(rec: ProcRecord): Promise<void> {
  const st = procStat(rec.pid);
  const before = st && st.starttime === rec.starttime ? childPids(rec.pid) : [];
  await stopRecord(rec, 'SIGINT');
  await fsp.rm(path.join(p.run(), rec.id === 'main' ? 'emperor.pid' : `emperor-${rec.id}.pid`), { force: true });
  // Vassals quit when the emperor's pipe closes; make sure, so sockets are free for the next emperor.
  for (const pid of before) {
    if (!(await waitGone(pid, 10_000))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}

/**
 * The vassal directory of the lab's second emperor, not in tyrant mode: as
 * on servers where root owns every vassal and each names its `uid`/`gid`,
 * so a site user can neither touch its ini nor be refused for owning it.
 */
export function rootVassalDir(): string {
  return `${VASSAL_DIR}-root`;
}
export function rootVassalPath(site: string): string {
  return path.join(rootVassalDir(), `${site}.ini`);
}
export function rootEmperorLogPath(): string {
  return path.join(p.logs(), 'emperor-root.log');
}

/** Starts the non-tyrant emperor on rootVassalDir(), beside the main one (replacing an earlier one of its own). */
export async function startRootEmperor(): Promise<Emperor> {
  await ensureLabDir();
  for (const rec of await records('emperor')) if (rec.id === 'root') await stopEmperorRecord(rec);
  await ensureDir(rootVassalDir(), 0o755);
  await ensureSocketDir(await ensureUwsgiGroup());
  const logPath = rootEmperorLogPath();
  await ensureDir(path.dirname(logPath), 0o755);
  fs.closeSync(fs.openSync(logPath, 'a', 0o600));
  await fsp.chmod(logPath, 0o600);
  const d = await spawnDaemon('emperor', 'root', UWSGI, ['--emperor', rootVassalDir(), '--die-on-term', '--pidfile', path.join(p.run(), 'emperor-root.pid')], logPath);
  await sleep(300);
  if (d.exited()) {
    await fsp.rm(recordFile('emperor', 'root'), { force: true });
    throw new Error(`uwsgi emperor (not tyrant) exited at once; log ${logPath}:\n${tail(logPath)}`);
  }
  return { pid: d.pid, logPath, stop: () => stopEmperorRecord(d.rec) };
}

/**
 * Moves a site's vassal from the tyrant emperor to the root one: root:root
 * 0644, running as the site user through `uid`, with group uwsgi for the
 * socket directory. `extra` lines follow (e.g. a touch-reload file).
 */
export async function useRootVassal(site: DjangoSite, settingsPackage: string, extra: string[] = []): Promise<string> {
  await fsp.rm(site.vassalPath, { force: true });
  await ensureDir(rootVassalDir(), 0o755);
  const ini = rootVassalPath(site.name);
  const text = vassalIni({ name: site.name, home: site.user.home, siteDir: site.siteDir, venvDir: site.venvDir, settingsPackage, extra: [`uid = ${site.name}`, `gid = ${UWSGI_GROUP}`, ...extra] });
  await fsp.writeFile(ini, text.replace('; Written by deployfile test/lab.', '; Written by deployfile test/lab (root emperor, not tyrant).'));
  await fsp.chown(ini, 0, 0);
  await fsp.chmod(ini, 0o644);
  return ini;
}

/** Socket accepts connections: the vassal is up (not necessarily the latest code; use waitForHttp for that). */
export async function waitForSocket(socket: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(socket);
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`uWSGI socket ${socket} not accepting after ${timeoutMs} ms`);
}

// ---------------------------------------------------------------------------
// nginx

export interface NginxSite {
  name: string;
  /** Free loopback port when omitted. */
  port?: number;
  /** The app's socket: a unix socket path, or host:port (a FastCGI server on loopback TCP, as in a daemontools `run` script); unused when `upstream` is given. */
  socket?: string;
  /**
   * How nginx talks to the app: 'uwsgi' (uwsgi_pass, the default) or
   * 'fastcgi' (fastcgi_pass with Debian's fastcgi_params, which send the
   * whole path as SCRIPT_NAME; Django wants it in PATH_INFO with an empty
   * SCRIPT_NAME, as the FastCGI articles' edited fastcgi_params have it).
   */
  protocol?: 'uwsgi' | 'fastcgi';
  /**
   * An HTTP app server instead (gunicorn): `proxy` is
   * `unix:/path/to.sock` or `127.0.0.1:8001`, written as proxy_pass with the
   * headers gunicorn's deployment docs give.
   */
  upstream?: { proxy: string };
  /** Served at /static/ when given (nginx's www-data must be able to read it). */
  staticRoot?: string;
}

export interface Nginx {
  pid: number;
  ports: Record<string, number>;
  urls: Record<string, string>;
  configPath: string;
  errorLogPath: string;
  accessLogPath: string;
  /** `nginx -t` and `nginx -s reload` for this instance (its own -p, -e and -c), as shell lines. */
  testCommand: string;
  reloadCommand: string;
  stop(): Promise<void>;
}

export interface NginxOptions {
  /**
   * A directory whose `*.conf` server blocks the http block includes (a
   * conf.d), with `uwsgi_params` beside nginx.conf as a packaged nginx has
   * it, for blocks written by `deploy provision`.
   */
  includeDir?: string;
}

function socketOf(s: NginxSite): string {
  if (!s.socket) throw new Error(`startNginx: site ${s.name} needs a socket or an upstream`);
  return s.socket;
}

function uwsgiPass(s: NginxSite): string[] {
  return ['      include /etc/nginx/uwsgi_params;', `      uwsgi_pass unix:${socketOf(s)};`];
}

function fastcgiPass(s: NginxSite): string[] {
  const socket = socketOf(s);
  return [
    '      include /etc/nginx/fastcgi_params;',
    "      fastcgi_param SCRIPT_NAME '';",
    '      fastcgi_param PATH_INFO $uri;',
    `      fastcgi_pass ${socket.startsWith('/') ? `unix:${socket}` : socket};`,
  ];
}

function proxyPass(proxy: string): string[] {
  // nginx names a unix socket upstream as http://unix:/path: (the colon ends the path).
  const target = proxy.startsWith('unix:') ? `http://${proxy}:` : `http://${proxy}`;
  return [
    '      proxy_set_header Host $http_host;',
    '      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    '      proxy_set_header X-Forwarded-Proto $scheme;',
    '      proxy_redirect off;',
    `      proxy_pass ${target};`,
  ];
}

/** One lab nginx at a time; starting again replaces it with the new site list. */
export async function startNginx(sites: NginxSite[], opts: NginxOptions = {}): Promise<Nginx> {
  await ensureLabDir();
  for (const rec of await records('nginx')) await stopRecord(rec, 'SIGTERM');
  const dir = p.nginx();
  await ensureDir(dir, 0o755);
  const tmp = path.join(dir, 'tmp');
  await ensureDir(tmp, 0o755);
  const ports: Record<string, number> = {};
  const servers: string[] = [];
  for (const s of sites) {
    assertName(s.name);
    const port = s.port ?? (await freePort());
    ports[s.name] = port;
    servers.push(
      [
        '  server {',
        `    listen ${LOOPBACK}:${port};`,
        `    server_name ${s.name} localhost ${LOOPBACK};`,
        `    access_log ${path.join(dir, `${s.name}.access.log`)};`,
        ...(s.staticRoot ? [`    location /static/ { alias ${s.staticRoot.replace(/\/?$/, '/')}; }`] : []),
        '    location / {',
        ...(s.upstream ? proxyPass(s.upstream.proxy) : s.protocol === 'fastcgi' ? fastcgiPass(s) : uwsgiPass(s)),
        '    }',
        '  }',
      ].join('\n'),
    );
  }
  if (opts.includeDir) {
    await ensureDir(opts.includeDir, 0o755);
    await fsp.copyFile('/etc/nginx/uwsgi_params', path.join(dir, 'uwsgi_params'));
    servers.push(`  include ${path.join(opts.includeDir, '*.conf')};`);
  }
  const errorLogPath = path.join(dir, 'error.log');
  const accessLogPath = path.join(dir, 'access.log');
  const configPath = path.join(dir, 'nginx.conf');
  const temp = (k: string) => `  ${k}_temp_path ${path.join(tmp, k)};`;
  await fsp.writeFile(
    configPath,
    [
      '# Written by deployfile test/lab; loopback only.',
      `user ${NGINX_USER};`,
      'worker_processes 1;',
      `pid ${path.join(dir, 'nginx.pid')};`,
      `error_log ${errorLogPath};`,
      'events { worker_connections 512; }',
      'http {',
      '  include /etc/nginx/mime.types;',
      '  default_type application/octet-stream;',
      `  access_log ${accessLogPath};`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp),
      ...servers,
      '}',
      '',
    ].join('\n'),
  );
  // -e: otherwise nginx first opens the packaged /var/log/nginx/error.log.
  const base = ['-p', dir, '-e', errorLogPath, '-c', configPath];
  await run(NGINX, [...base, '-t', '-q']);
  const d = await spawnDaemon('nginx', 'main', NGINX, [...base, '-g', 'daemon off;'], path.join(dir, 'nginx.out'));
  for (const port of Object.values(ports)) await waitForPort(port, d, errorLogPath);
  const urls = Object.fromEntries(Object.entries(ports).map(([n, port]) => [n, `http://${LOOPBACK}:${port}/`]));
  const command = [NGINX, ...base].join(' ');
  return { pid: d.pid, ports, urls, configPath, errorLogPath, accessLogPath, testCommand: `${command} -t`, reloadCommand: `${command} -s reload`, stop: () => stopRecord(d.rec) };
}

// ---------------------------------------------------------------------------
// HTTP

export interface HttpResult {
  status: number;
  body: string;
}

/**
 * Polls until predicate holds. Callers check what is served rather than
 * trusting a reload: two touches of a vassal within a second can collapse
 * into one reload.
 */
export async function waitForHttp(
  url: string,
  predicate: (body: string, status: number) => boolean = (_b, s) => s === 200,
  timeoutMs = 30_000,
): Promise<HttpResult> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no response';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000), headers: { connection: 'close' } });
      const body = await res.text();
      if (predicate(body, res.status)) return { status: res.status, body };
      last = `HTTP ${res.status}: ${body.slice(0, 300)}`;
    } catch (e) {
      last = String((e as Error).cause ?? e);
    }
    await sleep(200);
  }
  throw new Error(`waitForHttp ${url}: condition not met after ${timeoutMs} ms; last: ${last}`);
}

// ---------------------------------------------------------------------------
// Teardown

/** Stops every lab process recorded under labDir(), also those started by another process. */
export async function teardown(): Promise<void> {
  for (const rec of await records('nginx')) await stopRecord(rec);
  for (const rec of await records('emperor')) await stopEmperorRecord(rec);
  for (const rec of await records('sshd')) await stopRecord(rec);
}

/**
 * teardown() plus removing what the lab created: its vassals, the accounts
 * it made (never pre-existing ones), the uwsgi group if it made it, and
 * labDir().
 */
export async function purgeLab(): Promise<void> {
  await teardown();
  for (const name of await readCreatedUsers()) {
    await fsp.rm(vassalPath(name), { force: true });
    await fsp.rm(rootVassalPath(name), { force: true });
    if (await lookupUser(name)) await run('userdel', ['-r', name]).catch(() => undefined);
  }
  const createdGroup = path.join(labDir(), 'created-group');
  if (fs.existsSync(createdGroup)) {
    await run('gpasswd', ['-d', NGINX_USER, UWSGI_GROUP]).catch(() => undefined);
    await run('groupdel', [UWSGI_GROUP]).catch(() => undefined);
  }
  await fsp.rm(labDir(), { recursive: true, force: true });
}

// ---------------------------------------------------------------------------
// Preconditions

/** Why the lab cannot run here, or undefined when it can; e2e tests skip with this text. */
export function labUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'the lab needs Linux';
  if (process.getuid?.() !== 0) return 'the lab needs root (it creates users and uWSGI vassals)';
  const missing = [SSHD, UWSGI, NGINX, SYSTEM_PYTHON, '/usr/lib/uwsgi/plugins/python3_plugin.so', '/usr/bin/git', '/usr/bin/ssh-keygen'].filter(
    (f) => !fs.existsSync(f),
  );
  if (missing.length) return `missing ${missing.join(', ')} (run .ci/install-lab-packages)`;
  return undefined;
}
