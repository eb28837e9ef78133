/**
 * The benchmark's lab: N site users (bench01..benchNN) on one stock OpenSSH
 * sshd on 127.0.0.1, each with the example Django site cloned from ONE
 * origin (so a single `git push` reaches every site, as in the typical
 * deploy) and served by a uWSGI emperor in tyrant mode.
 *
 * Built on test/lab/lab.ts (the end-to-end lab), in its own lab dir
 * (default /var/tmp/deployfile-bench-lab), so a bench run never stops the
 * daemons of the e2e tests' lab. One difference: the e2e lab's emperor
 * watches /etc/uwsgi/emperor.d, which every lab on the machine shares, and
 * two emperors watching it start each other's vassals (which then fight
 * over the sockets and, with vacuum, delete them). The bench therefore
 * runs its own emperor on its own vassal dir, BENCH_VASSAL_DIR, and the
 * sites say so in their `vassal` var.
 *
 * Users, clones and virtualenvs survive between runs (the slow part); the
 * daemons and vassal files are removed at the end unless --keep-lab.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as lab from '../test/lab/lab.ts';

export const SETTINGS_PACKAGE = 'example_site';
export const DEFAULT_LAB_DIR = '/var/tmp/deployfile-bench-lab';
/** The bench emperor's vassals (the peers in bench/peers/ touch files here too). */
export const BENCH_VASSAL_DIR = '/etc/uwsgi/deployfile-bench.d';

export function benchVassalPath(site: string): string {
  return path.join(BENCH_VASSAL_DIR, `${site}.ini`);
}

export interface BenchLab {
  labDir: string;
  port: number;
  /** The listening sshd: every session, shell and command the sites run is its descendant. */
  sshdPid: number;
  keyPath: string;
  /** "[127.0.0.1]:port type key" lines for the tools' known_hosts. */
  knownHostsLines: string[];
  sites: string[];
  origin: lab.OriginRepo;
  /** What this run did to get the lab ready, for RESULTS.md. */
  setupNote: string;
}

interface SavedState {
  origin?: lab.OriginRepo;
  /** Sites whose user, clone and virtualenv are ready. */
  sites: string[];
  /** Bare site users of the growth case (user and key only). */
  growth?: string[];
}

export function siteName(i: number): string {
  return `bench${String(i).padStart(2, '0')}`;
}

function statePath(): string {
  return path.join(lab.labDir(), 'bench-lab.json');
}

function readState(): SavedState {
  try {
    return JSON.parse(fs.readFileSync(statePath(), 'utf8')) as SavedState;
  } catch {
    return { sites: [] };
  }
}

function writeState(state: SavedState): void {
  fs.writeFileSync(statePath(), JSON.stringify(state, null, 2) + '\n');
}

/** Records of daemons a previous `--keep-lab` run left, if they still run. */
function liveDaemon(kind: 'sshd' | 'emperor'): { pid: number; id: string } | undefined {
  const dir = path.join(lab.labDir(), 'run');
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir).filter((n) => n.startsWith(`${kind}-`) && n.endsWith('.json'));
  } catch {
    return undefined;
  }
  for (const n of names) {
    try {
      const rec = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as { pid: number; id: string };
      if (lab.isAlive(rec.pid)) return rec;
    } catch {
      // half-written
    }
  }
  return undefined;
}

async function writeVassal(name: string): Promise<void> {
  const user = await lab.lookupUser(name);
  if (!user) throw new Error(`bench lab: user ${name} vanished`);
  await fsp.mkdir(BENCH_VASSAL_DIR, { recursive: true, mode: 0o755 });
  const vp = benchVassalPath(name);
  const siteDir = path.join(user.home, 'Sites', name);
  const venvDir = path.join(user.home, 'virtualenvs', name);
  await fsp.writeFile(vp, lab.vassalIni({ name, home: user.home, siteDir, venvDir, settingsPackage: SETTINGS_PACKAGE, processes: 1 }));
  const gid = Number(execFileSync('getent', ['group', lab.UWSGI_GROUP], { encoding: 'utf8' }).split(':')[2]);
  await fsp.chown(vp, user.uid, gid);
  await fsp.chmod(vp, 0o644);
}

/** A site is reusable when its account, clone (of this origin) and virtualenv are all there. */
async function siteReady(name: string, origin: string): Promise<boolean> {
  const user = await lab.lookupUser(name);
  if (!user) return false;
  const siteDir = path.join(user.home, 'Sites', name);
  const venv = path.join(user.home, 'virtualenvs', name, 'bin', 'python');
  if (!fs.existsSync(venv) || !fs.existsSync(path.join(siteDir, '.git'))) return false;
  try {
    const { stdout } = await lab.runAs(name, 'git', ['-C', siteDir, 'remote', 'get-url', 'origin']);
    return stdout.trim() === origin;
  } catch {
    return false;
  }
}

/**
 * CPU time (clock ticks) used so far by the uWSGI processes: a reload after
 * a touch happens after the tool under test has exited, and must be over
 * before the next measurement starts.
 */
function uwsgiTicks(): number {
  let total = 0;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!comm.startsWith('uwsgi')) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += Number(f[11]) + Number(f[12]); // utime + stime
    } catch {
      // exited
    }
  }
  return total;
}

/**
 * Vassals the emperor has started reloading and not yet reported ready, from
 * its log (read incrementally): "reload the uwsgi instance X.ini" opens one,
 * "vassal X.ini is ready to accept requests" closes it.
 */
const emperorLog = { offset: 0, partial: '', pending: new Set<string>(), reloadedAt: new Map<string, number>() };

function pendingReloads(): Set<string> {
  let fd: number | undefined;
  try {
    fd = fs.openSync(lab.emperorLogPath(), 'r');
    const size = fs.fstatSync(fd).size;
    if (size < emperorLog.offset) emperorLog.offset = 0;
    const buf = Buffer.alloc(size - emperorLog.offset);
    fs.readSync(fd, buf, 0, buf.length, emperorLog.offset);
    emperorLog.offset = size;
    const lines = (emperorLog.partial + buf.toString('utf8')).split('\n');
    emperorLog.partial = lines.pop() ?? '';
    for (const line of lines) {
      const reload = /\[emperor\] reload the uwsgi instance (\S+)\.ini/.exec(line);
      if (reload) {
        emperorLog.pending.add(reload[1] as string);
        // "Wed Dec  2 03:25:07 2026 - [emperor] ...": the emperor's clock, to the second (the lab's TZ is the machine's).
        const at = Date.parse(line.slice(0, line.indexOf(' - [emperor]')));
        if (!Number.isNaN(at)) emperorLog.reloadedAt.set(reload[1] as string, at);
      }
      const ready = /\[emperor\] vassal (\S+)\.ini is ready to accept requests|\[emperor\] (?:stop|removed) the uwsgi instance (\S+)\.ini/.exec(line);
      if (ready) emperorLog.pending.delete((ready[1] ?? ready[2]) as string);
    }
  } catch {
    // no log yet
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return emperorLog.pending;
}

/** Forget what the emperor did so far (e.g. starting every vassal): only later reloads are waited for. */
function resetEmperorLog(): void {
  emperorLog.pending.clear();
  emperorLog.reloadedAt.clear();
  emperorLog.partial = '';
  try {
    emperorLog.offset = fs.statSync(lab.emperorLogPath()).size;
  } catch {
    emperorLog.offset = 0;
  }
}

/**
 * Waits until the apps a run touched have been reloaded: every reload the
 * emperor started is reported ready, and the uWSGI processes have been quiet
 * (under 2% of one core) for half a second. `settleMs` first: the emperor
 * notices a touched ini on its next directory scan (every 3 s), after the
 * tool under test has exited. Touching a vassal again while it still
 * reloads can leave it waiting for its old worker for the 60 s "mercy", so
 * the next run must not start before this returns.
 */
export async function waitUwsgiQuiet(settleMs = 0, timeoutMs = 120_000): Promise<number> {
  const started = Date.now();
  if (settleMs > 0) await sleep(settleMs);
  return settle(started, timeoutMs);
}

/**
 * After a run that started at `sinceMs`: wait until the emperor has noticed
 * every vassal ini touched since then (a "reload" line for it, at most 8 s:
 * the emperor scans every 3 s, later on a loaded machine), then as waitUwsgiQuiet. Faster than a fixed
 * pause, and exact about which apps are still reloading.
 */
export async function waitTouchedReloaded(sinceMs: number, timeoutMs = 120_000): Promise<number> {
  const started = Date.now();
  /** Each ini touched since `sinceMs`, with when (the emperor's log has whole seconds). */
  const touched = new Map<string, number>();
  for (const f of fs.existsSync(BENCH_VASSAL_DIR) ? fs.readdirSync(BENCH_VASSAL_DIR) : []) {
    try {
      const mtimeMs = fs.statSync(path.join(BENCH_VASSAL_DIR, f)).mtimeMs;
      if (f.endsWith('.ini') && mtimeMs >= sinceMs - 1000) touched.set(f.slice(0, -4), Math.floor(mtimeMs / 1000) * 1000);
    } catch {
      // removed meanwhile
    }
  }
  // A reload line for this touch, not any earlier one: a vassal reloaded by the run before would
  // otherwise count as noticed, and the settle below could end before the emperor's scan saw the
  // touch (it did on 2026-12-02, and the next run's touch was lost: RESULTS.md, "A lost reload").
  while (touched.size > 0 && Date.now() - started < 8000) {
    pendingReloads();
    for (const [name, at] of touched) if ((emperorLog.reloadedAt.get(name) ?? 0) >= at) touched.delete(name);
    if (touched.size > 0) await sleep(100);
  }
  return settle(started, timeoutMs);
}

/**
 * Vassals the emperor reloaded whose workers are not all newer than that
 * reload (and a second old). The emperor's "ready" line is not proof: a
 * worker that keeps serving a request (or missed its SIGHUP because a second
 * reload reached the new master before the worker had its handler) holds the
 * reload for up to the 60 s mercy, and a touch meanwhile is lost.
 */
function staleVassals(): string[] {
  if (emperorLog.reloadedAt.size === 0) return [];
  const uids = new Map<number, string>();
  for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [name, , uid] = line.split(':');
    if (name && emperorLog.reloadedAt.has(name)) uids.set(Number(uid), name);
  }
  const ticks = 100; // USER_HZ on Linux
  const boot = Number(/^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))?.[1]) * 1000;
  const procs = new Map<number, { name: string; ppid: number; startedMs: number }>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const name = uids.get(fs.statSync(`/proc/${d}`).uid);
      if (!name) continue;
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (!stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).startsWith('uwsgi')) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(d), { name, ppid: Number(f[1]), startedMs: boot + (Number(f[19]) * 1000) / ticks });
    } catch {
      // exited
    }
  }
  const stale = new Set<string>();
  const now = Date.now();
  for (const p of procs.values()) {
    // A worker is a uWSGI process whose parent is its vassal's master (a process of the same user).
    if (procs.get(p.ppid)?.name !== p.name) continue;
    const reloaded = emperorLog.reloadedAt.get(p.name) ?? 0;
    if (p.startedMs < reloaded || now - p.startedMs < 1000) stale.add(p.name);
  }
  return [...stale];
}

async function settle(started: number, timeoutMs: number): Promise<number> {
  let before = uwsgiTicks();
  for (;;) {
    await sleep(500);
    const now = uwsgiTicks();
    const pending = pendingReloads();
    const stale = pending.size === 0 ? staleVassals() : [];
    // Ticks of processes that exited in the window are lost, so `now` can be lower.
    if ((now - before <= 1 && pending.size === 0 && stale.length === 0) || Date.now() - started > timeoutMs) {
      if (pending.size > 0 || stale.length > 0) process.stderr.write(`bench: still reloading after ${timeoutMs / 1000} s: ${[...pending, ...stale].join(', ')}\n`);
      return Date.now() - started;
    }
    before = now;
  }
}

async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** Sets up what is missing for `count` sites and starts the daemons (or reuses running ones). */
export async function ensureLab(count: number, repoRoot: string, say: (s: string) => void): Promise<BenchLab> {
  const why = lab.labUnavailableReason();
  if (why) throw new Error(`lab unavailable: ${why}`);
  const started = Date.now();
  const notes: string[] = [];
  await fsp.mkdir(lab.labDir(), { recursive: true, mode: 0o755 });
  const key = await lab.createOperatorKey();
  const state = readState();

  let origin = state.origin;
  if (!origin || !fs.existsSync(origin.barePath) || !fs.existsSync(origin.workDir)) {
    say('creating the origin repository (one for all sites)');
    origin = await lab.createOriginRepo('bench', path.join(repoRoot, 'examples', 'django-site'));
    state.sites = [];
    notes.push('new origin');
  }
  state.origin = origin;

  const sites = Array.from({ length: count }, (_, i) => siteName(i + 1));
  const ready = new Set<string>();
  for (const name of sites) if (state.sites.includes(name) && (await siteReady(name, origin.barePath))) ready.add(name);
  const missing = sites.filter((s) => !ready.has(s));
  if (missing.length > 0) {
    say(`setting up ${missing.length} site user(s): ${missing.join(', ')} (user, clone, virtualenv; about 3 s each)`);
    notes.push(`set up ${missing.length} site(s)`);
    // Two at a time: venv creation and pip are CPU-bound and there are 2 cores.
    await inBatches(missing, 2, async (name) => {
      await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
      await lab.setupDjangoSite(name, { origin, settingsPackage: SETTINGS_PACKAGE, processes: 1 });
      // setupDjangoSite writes the shared /etc/uwsgi/emperor.d; the bench's vassal lives in BENCH_VASSAL_DIR.
      await fsp.rm(lab.vassalPath(name), { force: true });
      state.sites = [...new Set([...state.sites, name])];
      writeState(state);
    });
  }
  if (ready.size > 0) notes.push(`reused ${ready.size} site(s)`);
  // Every site back on the origin's branch head, so each run's pull starts from the same place.
  await inBatches([...ready], 4, async (name) => {
    const dir = path.join('/home', name, 'Sites', name);
    await lab.runAs(name, 'git', ['-C', dir, 'fetch', '-q', 'origin']);
    await lab.runAs(name, 'git', ['-C', dir, 'reset', '-q', '--hard', `origin/${origin.branch}`]);
  });
  for (const name of sites) await writeVassal(name);
  writeState(state);

  const sshdRec = liveDaemon('sshd');
  let port: number;
  let sshdPid: number;
  if (sshdRec) {
    port = Number(sshdRec.id);
    sshdPid = sshdRec.pid;
    notes.push('reused running sshd');
  } else {
    say('starting sshd (stock MaxStartups/MaxSessions)');
    const sshd = await lab.startSshd();
    port = sshd.port;
    sshdPid = sshd.pid;
  }
  if (!liveDaemon('emperor')) {
    say(`starting the uWSGI emperor on ${BENCH_VASSAL_DIR}`);
    await startBenchEmperor();
  }
  if (!trackServerCpu(sshdPid)) notes.push('no cgroup CPU accounting: server CPU not measured');
  const emperor = liveDaemon('emperor');
  if (!emperor || !trackAppsCpu(emperor.pid)) notes.push("no cgroup CPU accounting for the apps: their reloads' CPU not measured");
  say(`waiting for ${sites.length} vassal(s) to listen`);
  for (const name of sites) await lab.waitForSocket(lab.socketPath(name), 120_000);
  resetEmperorLog();
  await waitUwsgiQuiet(1000);

  const knownHostsLines = fs
    .readFileSync(lab.knownHostsPath(), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`[${lab.LOOPBACK}]:${port} `));
  if (knownHostsLines.length === 0) throw new Error(`no known_hosts lines for port ${port} in ${lab.knownHostsPath()}`);
  notes.push(`ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return { labDir: lab.labDir(), port, sshdPid, keyPath: key.privateKeyPath, knownHostsLines, sites, origin, setupNote: notes.join(', ') };
}

export function growthSiteName(i: number): string {
  return `benchg${String(i).padStart(3, '0')}`;
}

/**
 * The growth case's sites (case 8): `count` bare site users, each with the
 * operator's key and nothing else. Orchestration only runs `true`, so they
 * need no clone, virtualenv or vassal, and 200 of them are ready in about a
 * minute instead of the ten a full site takes each. Created once, reused.
 */
export async function ensureGrowthSites(count: number, say: (s: string) => void): Promise<string[]> {
  const key = await lab.createOperatorKey();
  const state = readState();
  const names = Array.from({ length: count }, (_, i) => growthSiteName(i + 1));
  const known = new Set(state.growth ?? []);
  const missing: string[] = [];
  for (const name of names) if (!known.has(name) || !(await lab.lookupUser(name))) missing.push(name);
  if (missing.length > 0) {
    say(`growth case: creating ${missing.length} bare site user(s) (${missing[0]} to ${missing[missing.length - 1]})`);
    await inBatches(missing, 4, async (name) => {
      await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
    });
    writeState({ ...readState(), growth: [...new Set([...(state.growth ?? []), ...missing])] });
  }
  return names;
}

/**
 * The releases case's own sites (case 7): one deployed in the releases
 * layout, one in place, both from the shared origin. Their own accounts, so
 * the in-place sites of the other cases are never converted. Set up like the
 * others when missing (with production settings, as a first deploy leaves
 * them), their vassals written; later runs reuse them as they are.
 */
export const RELEASES_SITE = 'benchrl';
export const IN_PLACE_SITE = 'benchip';
export const LAYOUT_SITES = [RELEASES_SITE, IN_PLACE_SITE] as const;

export async function ensureLayoutSites(origin: lab.OriginRepo, say: (s: string) => void): Promise<void> {
  const key = await lab.createOperatorKey();
  for (const name of LAYOUT_SITES) {
    if (!(await siteReady(name, origin.barePath))) {
      say(`setting up ${name} (user, clone, virtualenv) for the releases case`);
      await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
      // A site this case converted before starts in place again.
      for (const leftover of ['releases', '.deployfile', 'Sites', 'virtualenvs']) await fsp.rm(path.join('/home', name, leftover), { recursive: true, force: true });
      const site = await lab.setupDjangoSite(name, { origin, settingsPackage: SETTINGS_PACKAGE, processes: 1 });
      await fsp.rm(lab.vassalPath(name), { force: true });
      await lab.runAs(name, 'cp', [`${SETTINGS_PACKAGE}/settings_production.py`, `${SETTINGS_PACKAGE}/settings.py`], { cwd: site.siteDir });
    }
    await writeVassal(name);
  }
  for (const name of LAYOUT_SITES) await lab.waitForSocket(lab.socketPath(name), 120_000);
}

/**
 * lab.startEmperor() with another vassal dir. The process is recorded the
 * way lab.ts records its daemons, so lab.teardown() (and the lab CLI's
 * `down` with this DEPLOYFILE_LAB_DIR) stops it.
 */
async function startBenchEmperor(): Promise<void> {
  await fsp.mkdir(BENCH_VASSAL_DIR, { recursive: true, mode: 0o755 });
  const runDir = path.join(lab.labDir(), 'run');
  await fsp.mkdir(runDir, { recursive: true });
  const logPath = lab.emperorLogPath();
  await fsp.mkdir(path.dirname(logPath), { recursive: true });
  const fd = fs.openSync(logPath, 'a');
  try {
    const args = ['--emperor', BENCH_VASSAL_DIR, '--emperor-tyrant', '--emperor-tyrant-nofollow', '--die-on-term', '--pidfile', path.join(runDir, 'emperor.pid')];
    const child = spawn(lab.UWSGI, args, { cwd: lab.labDir(), detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, PATH: '/usr/local/bin:/usr/bin:/bin' } });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    const pid = child.pid as number;
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const starttime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
    fs.writeFileSync(path.join(runDir, 'emperor-main.json'), JSON.stringify({ kind: 'emperor', id: 'main', pid, starttime, exe: lab.UWSGI }));
    await sleep(300);
    if (!lab.isAlive(pid)) throw new Error(`uwsgi emperor exited at once; see ${logPath}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** Stops this lab's daemons and removes its vassal files; users, clones and virtualenvs stay for the next run. */
export async function stopLab(sites: string[]): Promise<void> {
  // Vassal files first: the emperor then stops those vassals itself.
  for (const name of sites) await fsp.rm(benchVassalPath(name), { force: true });
  await lab.teardown();
  for (const name of [SSHD_CGROUP, APPS_CGROUP]) {
    try {
      const cg = cgroupDir(name);
      if (cg && fs.existsSync(cg.dir)) fs.rmdirSync(cg.dir);
    } catch {
      // still has processes (a kept lab elsewhere); harmless
    }
  }
}

export { lab };

/**
 * What the sites cost the server: the lab's sshd is moved into its own CPU
 * accounting cgroup, which every session, login shell and command it starts
 * inherits (reaped or not: sshd's session processes don't pass their CPU
 * times up to the listener, so /proc's cutime can't be used). cgroup v2 when
 * the unified hierarchy is at /sys/fs/cgroup, else v1's cpuacct.
 */
const SSHD_CGROUP = 'deployfile-bench-sshd';
/**
 * The emperor and its vassals, in a cgroup of their own: what reloading the
 * apps costs, apart from what the tools' sessions cost. A verified deploy
 * pays for the reloads inside its run; a tool that only touches leaves them
 * for after it has exited.
 */
const APPS_CGROUP = 'deployfile-bench-apps';

function cgroupDir(name: string): { dir: string; usageMs: (dir: string) => number } | undefined {
  if (fs.existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    return {
      dir: path.join('/sys/fs/cgroup', name),
      usageMs: (dir) => Number(/usage_usec (\d+)/.exec(fs.readFileSync(path.join(dir, 'cpu.stat'), 'utf8'))?.[1]) / 1000,
    };
  }
  if (fs.existsSync('/sys/fs/cgroup/cpuacct/cpuacct.usage')) {
    return { dir: path.join('/sys/fs/cgroup/cpuacct', name), usageMs: (dir) => Number(fs.readFileSync(path.join(dir, 'cpuacct.usage'), 'utf8')) / 1e6 };
  }
  return undefined;
}

/** Puts `pids` in the accounting cgroup `name`; what they start later is counted there too. */
function trackCpu(name: string, pids: number[]): boolean {
  const cg = cgroupDir(name);
  if (!cg) return false;
  try {
    fs.mkdirSync(cg.dir, { recursive: true });
    for (const pid of pids) {
      try {
        fs.writeFileSync(path.join(cg.dir, 'cgroup.procs'), String(pid));
      } catch (error) {
        // exited meanwhile (a vassal reloading); anything else is a real failure
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    }
    return Number.isFinite(cg.usageMs(cg.dir));
  } catch {
    return false;
  }
}

function cpuMs(name: string): number {
  const cg = cgroupDir(name);
  try {
    return cg ? cg.usageMs(cg.dir) : NaN;
  } catch {
    return NaN;
  }
}

/** Puts `pid` (the sshd) in the accounting cgroup; later reads of serverCpuMs() count it and its descendants. */
export function trackServerCpu(pid: number): boolean {
  return trackCpu(SSHD_CGROUP, [pid]);
}

/**
 * Puts the emperor and every process it has started (vassal masters and
 * workers) in the apps' cgroup; the vassals it starts or reloads later are
 * its children and land there too.
 */
export function trackAppsCpu(emperorPid: number): boolean {
  const children = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      // exited
    }
  }
  const tree: number[] = [];
  const walk = (pid: number): void => {
    tree.push(pid);
    for (const child of children.get(pid) ?? []) walk(child);
  };
  walk(emperorPid);
  return trackCpu(APPS_CGROUP, tree);
}

/** CPU time (ms) used so far in the sshd's cgroup: sshd, sessions, shells and the commands they ran. NaN if not tracked. */
export function serverCpuMs(): number {
  return cpuMs(SSHD_CGROUP);
}

/** CPU time (ms) used so far by the uWSGI emperor and its vassals (the apps, their reloads). NaN if not tracked. */
export function appsCpuMs(): number {
  return cpuMs(APPS_CGROUP);
}

/**
 * Ends whatever a failed run left running on the server: every process in
 * the sshd's cgroup but the listener itself (`listener`). sshd does not end
 * a non-pty command when its connection dies, so a tool killed at its time
 * limit (Ansible's 50 x 50 run) leaves its remote Pythons spinning, and
 * the next contestant's run would pay for them. Returns how many it ended.
 */
export function endStrays(listener: number): number {
  const cg = cgroupDir(SSHD_CGROUP);
  if (!cg) return 0;
  let ended = 0;
  try {
    for (const pid of fs.readFileSync(path.join(cg.dir, 'cgroup.procs'), 'utf8').split('\n').map(Number)) {
      if (!Number.isInteger(pid) || pid <= 1 || pid === listener) continue;
      try {
        process.kill(pid, 'SIGKILL');
        ended++;
      } catch {
        // gone already
      }
    }
  } catch {
    // no cgroup: nothing tracked
  }
  return ended;
}
