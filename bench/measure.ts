/**
 * Timing a tool as a user runs it: one child process from spawn to exit,
 * its peak RSS from the kernel (GNU time's %M, i.e. wait4's ru_maxrss), its
 * output to a log file so a failed run can be read afterwards.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Invocation {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface Sample {
  ms: number;
  exitCode: number | null;
  /** Peak resident set of the process (largest of it and its waited-for children), KiB. */
  maxRssKb: number | undefined;
  /**
   * CPU time (user + system) of the process and its waited-for children, ms.
   * Daemonized children (an `ssh -f` ControlMaster) are not waited for and not counted.
   */
  cpuMs: number | undefined;
  /** CPU the run cost the server (set by the caller, which knows the sshd). */
  serverCpuMs?: number;
  /** CPU the apps (uWSGI emperor and vassals) used from the run's start until the reloads it caused were over (set by the caller). */
  appsCpuMs?: number;
  log: string;
  /** Epoch ms at spawn and at exit, to line up with the tool's own timestamps. */
  startedAt: number;
  endedAt: number;
}

/** Runs `inv` under /usr/bin/time; never throws for a non-zero exit (the sample says so). */
export async function timed(inv: Invocation, log: string, timeoutMs = 600_000): Promise<Sample> {
  fs.mkdirSync(path.dirname(log), { recursive: true });
  const rssFile = `${log}.rss`;
  fs.rmSync(rssFile, { force: true });
  const out = fs.openSync(log, 'w');
  fs.writeSync(out, `$ ${inv.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ')}\n`);
  const argv = ['/usr/bin/time', '-f', '%M %U %S', '-o', rssFile, ...inv.argv];
  const startedAt = Date.now();
  const started = performance.now();
  // Its own process group, ended whole at the limit: killing only GNU time left the tool under it running
  // (an Ansible play went on after its 600 s, and its ssh masters wrote into a directory being removed).
  const child = spawn(argv[0] as string, argv.slice(1), { env: inv.env, cwd: inv.cwd, stdio: ['ignore', out, out], detached: true });
  const timer = setTimeout(() => {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  }, timeoutMs);
  // Detached, the group no longer gets the terminal's Ctrl-C: pass a stop on to it, then stop as before.
  const passOn = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
    process.kill(process.pid, signal);
  };
  const onInt = (): void => passOn('SIGINT');
  const onTerm = (): void => passOn('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  }).finally(() => {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  });
  const ms = performance.now() - started;
  clearTimeout(timer);
  fs.closeSync(out);
  let maxRssKb: number | undefined;
  let cpuMs: number | undefined;
  try {
    // GNU time writes "Command exited with non-zero status N" first when it did.
    const lines = fs.readFileSync(rssFile, 'utf8').trim().split('\n');
    const [rss, user, sys] = (lines[lines.length - 1] ?? '').split(' ').map(Number);
    if (Number.isFinite(rss)) maxRssKb = rss;
    if (Number.isFinite(user) && Number.isFinite(sys)) cpuMs = ((user as number) + (sys as number)) * 1000;
  } catch {
    // no time output (killed)
  }
  return { ms, exitCode, maxRssKb, cpuMs, log, startedAt, endedAt: startedAt + ms };
}

export interface Stats {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function stats(values: number[]): Stats {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  const median = v.length === 0 ? NaN : v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
  return { median, min: v[0] ?? NaN, max: v[v.length - 1] ?? NaN, n: v.length };
}

/** 1234 -> "1.23 s", 12.3 -> "12.3 ms". */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 100_000 ? 0 : 2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** "1.23 s (1.20–1.31)" */
export function fmtStats(s: Stats): string {
  if (s.n === 0) return 'n/a';
  if (s.n === 1) return `${fmtMs(s.median)} (1 run)`;
  return `${fmtMs(s.median)} (${fmtMs(s.min)}–${fmtMs(s.max)})`;
}

export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return 'n/a';
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}x`;
}

/** CPU busy fraction of the whole machine over `ms`, from /proc/stat. */
export async function machineBusy(ms: number): Promise<number> {
  const read = (): [number, number] => {
    const f = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return [f.reduce((a, b) => a + b, 0), idle];
  };
  const [t0, i0] = read();
  await new Promise((r) => setTimeout(r, ms));
  const [t1, i1] = read();
  return t1 === t0 ? 0 : 1 - (i1 - i0) / (t1 - t0);
}

export interface ProfileLine {
  name: string;
  where: string;
  selfMs: number;
  pct: number;
}

/** Top self-time functions and top "areas" (package or dist folder) of a .cpuprofile written by node --cpu-prof. */
export function summarizeCpuProfile(file: string, top = 12): { functions: ProfileLine[]; areas: ProfileLine[]; totalMs: number } {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
    startTime: number;
    endTime: number;
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  prof.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  const totalUs = prof.endTime - prof.startTime;
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const area = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const short = shortUrl(url);
    const name = functionName || (url ? '(anonymous)' : `(${functionName || 'program'})`);
    const key = `${name}@${short}:${lineNumber}`;
    const e = fn.get(key) ?? { name: name === '(anonymous)' || !url ? name : name, where: url ? `${short}:${lineNumber + 1}` : '', us: 0 };
    e.us += us;
    fn.set(key, e);
    const a = areaOf(url, functionName);
    area.set(a, (area.get(a) ?? 0) + us);
  }
  const toLines = (entries: { name: string; where: string; us: number }[]): ProfileLine[] =>
    entries
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, pct: (100 * e.us) / totalUs }));
  return {
    functions: toLines([...fn.values()]),
    areas: toLines([...area.entries()].map(([name, us]) => ({ name, where: '', us }))),
    totalMs: totalUs / 1000,
  };
}

function shortUrl(url: string): string {
  if (!url) return '';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

function areaOf(url: string, functionName: string): string {
  if (!url) return functionName === '(garbage collector)' ? 'GC' : functionName === '(idle)' ? 'idle (waiting on I/O)' : functionName === '(program)' ? 'V8/native (program)' : functionName || 'native';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return (rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]) ?? url;
  }
  if (url.startsWith('node:')) return `node core (${url.split('/')[0]?.replace('node:', '') ?? ''})`;
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return `deployfile ${url.slice(dist + 1).split('/').slice(0, 3).join('/')}`;
  return url.replace(/^file:\/\//, '');
}

interface Ev {
  type: string;
  ts: string;
  site?: string | null;
  task?: string;
  taskId?: string;
  parentTaskId?: string | null;
  status?: string;
  durationMs?: number;
  where?: string;
  note?: string;
  notes?: string[];
}

/**
 * Where a `deploy run --json` run's wall time went, from its own events:
 * start-up until the run starts, per site the wait for the first command
 * (connecting), each task's duration (median and max over sites), and the
 * time from the run's end to the process's exit. Rows are markdown.
 */
/** The `--json` events in a run's log (its human lines left out). */
function jsonEvents(text: string): Ev[] {
  const events: Ev[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      events.push(JSON.parse(line) as Ev);
    } catch {
      // a human line
    }
  }
  return events;
}

/**
 * For each site that ended ok: its time from `site:start` to `site:end`
 * (durationMs), and to the first start of the task `until` (NaN if it never
 * started).
 */
export function siteDurations(log: string, until: string): Map<string, { totalMs: number; untilMs: number }> {
  const took = new Map<string, { totalMs: number; untilMs: number }>();
  const started = new Map<string, number>();
  const reached = new Map<string, number>();
  for (const e of jsonEvents(log)) {
    if (!e.site) continue;
    if (e.type === 'site:start') started.set(e.site, Date.parse(e.ts));
    if (e.type === 'task:start' && e.task === until && !reached.has(e.site)) reached.set(e.site, Date.parse(e.ts));
    if (e.type === 'site:end' && e.status === 'ok' && typeof e.durationMs === 'number') {
      took.set(e.site, { totalMs: e.durationMs, untilMs: (reached.get(e.site) ?? NaN) - (started.get(e.site) ?? NaN) });
    }
  }
  return took;
}

export function timeline(log: string, sample: Sample): string[] {
  const events = jsonEvents(fs.readFileSync(log, 'utf8'));
  const t = (e: Ev | undefined): number => (e ? Date.parse(e.ts) : NaN);
  const runStart = events.find((e) => e.type === 'run:start');
  const runEnd = events.find((e) => e.type === 'run:end');
  if (!runStart || !runEnd) return ['(no JSON events in the log)'];
  const rows: [string, number[]][] = [];
  rows.push(['process start → run:start (Node, the CLI, jiti compiling and loading the deployfile)', [t(runStart) - sample.startedAt]]);
  const siteStart = new Map<string, number>();
  const firstRemote = new Map<string, number>();
  for (const e of events) {
    if (e.type === 'site:start' && e.site) siteStart.set(e.site, t(e));
    if (e.type === 'command:start' && e.where === 'remote' && e.site && !firstRemote.has(e.site)) firstRemote.set(e.site, t(e));
  }
  const waits = [...siteStart].filter(([s]) => firstRemote.has(s)).map(([s, at]) => (firstRemote.get(s) as number) - at);
  if (waits.length) rows.push(['per site: site:start → first remote command starts (includes waiting for run-once tasks)', waits]);
  const byTask = new Map<string, number[]>();
  const skipped = new Map<string, number>();
  const depth = new Map<string, number>();
  for (const e of events) {
    if (e.type === 'task:start' && e.taskId) depth.set(e.taskId, e.parentTaskId ? (depth.get(e.parentTaskId) ?? 0) + 1 : 0);
    if (e.type === 'task:end' && e.task && e.taskId) {
      const key = `${'  '.repeat(depth.get(e.taskId) ?? 0)}task ${e.task}${e.site ? '' : ' (once)'}`;
      byTask.set(key, [...(byTask.get(key) ?? []), e.durationMs ?? NaN]);
      if (e.status === 'skipped') skipped.set(key, (skipped.get(key) ?? 0) + 1);
    }
  }
  // Tasks in the order they first started.
  const order: string[] = [];
  for (const e of events) {
    if (e.type !== 'task:start' || !e.taskId) continue;
    const key = `${'  '.repeat(depth.get(e.taskId) ?? 0)}task ${e.task}${e.site ? '' : ' (once)'}`;
    if (!order.includes(key)) order.push(key);
  }
  for (const key of order) {
    const n = skipped.get(key);
    rows.push([`${key}${n ? ` (skipped on ${n})` : ''}`, byTask.get(key) ?? []]);
  }
  // touchVassalIni reports, per site, how long after the touch its verdict came.
  const verdicts = events
    .filter((e) => e.type === 'site:end')
    .flatMap((e) => (e.notes ?? []).map((n) => /^reload (?:verified|failed, verdict) ([\d.]+)s after the touch$/.exec(n)?.[1]))
    .filter((v): v is string => v !== undefined)
    .map((v) => Number(v) * 1000);
  if (verdicts.length) rows.push(['per site: vassal touched → reload verdict (the new instance answered)', verdicts]);
  rows.push(['run:start → run:end', [t(runEnd) - t(runStart)]]);
  rows.push(['run:end → process exit (closing connections, flushing)', [sample.endedAt - t(runEnd)]]);
  return [
    `Timeline of that run, from its \`--json\` events (wall ${fmtMs(sample.ms)}):`,
    '',
    '| phase | median | max | over |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map(([name, v]) => {
      const st = stats(v);
      return `| ${name.replace(/^( +)/, (m) => '&nbsp;'.repeat(m.length * 2))} | ${fmtMs(st.median)} | ${fmtMs(st.max)} | ${v.length > 1 ? `${v.length} sites` : ''} |`;
    }),
  ];
}
