/**
 * The per-site deploy lock: a directory on the server, under the site user's
 * home, taken with `mkdir` (atomic on every POSIX filesystem, NFS included),
 * with an `info.json` inside saying who holds it. Two operators, or an
 * operator and a pipeline, can then never deploy the same site at once.
 *
 *   ~/.deployfile/lock/info.json  {"operator":"alice@laptop","pid":4242,"since":"...","tasks":["deploy"],"runId":"..."}
 */
import { hostname, userInfo } from 'node:os';
import { quote } from '../core/quote.ts';
import { runScript, type ScriptOptions, type ScriptResult } from './scripts.ts';
import type { Transport } from '../transports/transport.ts';

/** Relative to the site user's home; shown in messages as `~/.deployfile/lock`. */
export const LOCK_PATH = '.deployfile/lock';

/** What the lock directory's `info.json` holds. */
export interface LockInfo {
  /** `user@host` of the operator (or `DEPLOY_OPERATOR`). */
  operator: string;
  /** The operator's machine, to tell whether `pid` can be checked from here. */
  host: string;
  pid: number;
  /** ISO 8601 time the lock was taken. */
  since: string;
  tasks: string[];
  /** The run that holds it: release removes the lock only when it is still this run's. */
  runId: string;
  deployfile?: string;
}

/** Who is deploying: `DEPLOY_OPERATOR` (pipelines name themselves), else `user@host`. */
export function operatorName(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DEPLOY_OPERATOR) return env.DEPLOY_OPERATOR;
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    // os.userInfo throws for uids without a passwd entry (containers).
    user = env.USER ?? env.LOGNAME ?? 'unknown';
  }
  return `${user}@${hostname()}`;
}

/** The lock info for this process, run and tasks. */
export function lockInfoFor(runId: string, tasks: string[], deployfile?: string): LockInfo {
  return { operator: operatorName(), host: hostname(), pid: process.pid, since: new Date().toISOString(), tasks, runId, deployfile };
}

/** A second deploy of a locked site: names the holder and the way out. */
export class SiteLockedError extends Error {
  override readonly name = 'SiteLockedError';
  constructor(
    readonly site: string,
    readonly holder: LockInfo | null,
  ) {
    super(`site ${site} is locked by ${holder ? describeHolder(holder) : 'an unknown holder (its ~/.deployfile/lock has no readable info.json)'}; wait for that deploy to finish, or if it is gone remove the lock with: deploy unlock ${site}`);
  }
}

/**
 * `alice@laptop (pid 4242) since 2025-05-01T10:00:00.000Z, running deploy, migrate`,
 * plus a note when that process is known to be gone.
 */
export function describeHolder(info: LockInfo): string {
  const tasks = info.tasks.length > 0 ? `, running ${info.tasks.join(', ')}` : '';
  return `${info.operator} (pid ${info.pid}) since ${info.since}${tasks}${processGone(info) ? ` (process ${info.pid} no longer runs on ${info.host})` : ''}`;
}

/** True only when the holder ran on this machine and its process is gone; never guesses about other machines. */
function processGone(info: LockInfo): boolean {
  if (info.host !== hostname() || !Number.isInteger(info.pid) || info.pid <= 0) return false;
  try {
    process.kill(info.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** The last line of `text` that is a JSON object: login scripts may print before our output. */
export function parseLockInfo(text: string): LockInfo | null {
  const lines = text.split('\n').map((line) => line.trim()).filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const value = JSON.parse(lines[i] as string) as Partial<LockInfo>;
      if (value && typeof value === 'object' && typeof value.operator === 'string') {
        return {
          operator: value.operator,
          host: String(value.host ?? ''),
          pid: Number(value.pid ?? 0),
          since: String(value.since ?? ''),
          tasks: Array.isArray(value.tasks) ? value.tasks.map(String) : [],
          runId: String(value.runId ?? ''),
          deployfile: typeof value.deployfile === 'string' ? value.deployfile : undefined,
        };
      }
    } catch {
      // not JSON: a login banner or a half-written file
    }
  }
  return null;
}

const DIR = '"$HOME"/.deployfile';
const LOCK = `${DIR}/lock`;
const INFO = `${LOCK}/info.json`;
const HELD = 3;

/** How the lock scripts run: through the runner (see connection/scripts.ts), with the run's bus, redactor and signal. */
export type LockScriptOptions = Omit<ScriptOptions, 'label' | 'stdin'>;

export function scriptError(what: string, target: string, result: ScriptResult): Error {
  const why = result.stderr.trim().split('\n').slice(-3).join('; ') || `exit code ${result.exitCode}`;
  return new Error(`could not ${what} on ${target}: ${why}`);
}

/**
 * Take the site's lock, or learn who holds it. `mkdir` is the atomic step;
 * the info file is written right after, so a reader that finds the
 * directory without it waits a moment before calling the holder unknown.
 */
export async function acquireLock(transport: Transport, info: LockInfo, options: LockScriptOptions = {}): Promise<{ acquired: true } | { acquired: false; holder: LockInfo | null }> {
  // Builtins where they do (test, read, printf): each program started costs the server a process on every deploy.
  const script = [
    'umask 077',
    `[ -d ${DIR} ] || mkdir -p ${DIR} || exit 2`,
    `if mkdir ${LOCK} 2>/dev/null; then`,
    `  if IFS= read -r info && printf '%s\\n' "$info" > ${INFO}; then echo deployfile-lock-acquired; exit 0; fi`,
    `  rm -rf ${LOCK}; exit 2`,
    'fi',
    'n=0',
    `while [ ! -s ${INFO} ] && [ $n -lt 10 ]; do sleep 0.2 2>/dev/null || sleep 1; n=$((n+1)); done`,
    `cat ${INFO} 2>/dev/null`,
    `exit ${HELD}`,
  ].join('\n');
  // Ctrl-C ends the script (it may wait up to 2 s for a holder's info).
  const result = await runScript(transport, script, { ...options, label: `take the deploy lock ~/${LOCK_PATH}`, stdin: `${JSON.stringify(info)}\n` });
  if (result.exitCode === 0 && result.stdout.includes('deployfile-lock-acquired')) return { acquired: true };
  if (result.exitCode === HELD) return { acquired: false, holder: parseLockInfo(result.stdout) };
  throw scriptError(`take the deploy lock ~/${LOCK_PATH}`, transport.target, result);
}

/**
 * Remove the lock if it is still this run's (`runId`); someone's
 * `deploy unlock` followed by another deploy must not lose their lock to us.
 * Resolves to whether it removed it.
 */
export async function releaseLock(transport: Transport, runId: string, options: LockScriptOptions = {}): Promise<boolean> {
  const result = await runScript(transport, releaseLockScript(runId), { ...options, label: `release the deploy lock ~/${LOCK_PATH}` });
  if (result.exitCode !== 0) throw scriptError(`release the deploy lock ~/${LOCK_PATH}`, transport.target, result);
  return result.stdout.includes(LOCK_RELEASED);
}

/** Printed by {@link releaseLockScript} when it removed the lock. */
export const LOCK_RELEASED = 'deployfile-lock-released';

/** The script that removes the lock only while it is still `runId`'s: a lock a later run took survives. */
export function releaseLockScript(runId: string): string {
  // info.json is one line (acquireLock writes it so): read, a builtin, where grep would be a process.
  return [
    'held=',
    `{ IFS= read -r held < ${INFO}; } 2>/dev/null`,
    `case $held in *${quote(`"runId":${JSON.stringify(runId)}`)}*) rm -rf ${LOCK} && echo ${LOCK_RELEASED} ;; esac`,
  ].join('\n');
}

/** What `deploy unlock` shows: null when the site is not locked. */
export async function readLock(transport: Transport, options: LockScriptOptions = {}): Promise<{ locked: false } | { locked: true; holder: LockInfo | null; raw: string }> {
  const script = [`if [ -d ${LOCK} ]; then echo deployfile-locked; cat ${INFO} 2>/dev/null; echo; fi`, 'exit 0'].join('\n');
  const result = await runScript(transport, script, { ...options, label: `read the deploy lock ~/${LOCK_PATH}` });
  if (result.exitCode !== 0) throw scriptError(`read the deploy lock ~/${LOCK_PATH}`, transport.target, result);
  const at = result.stdout.indexOf('deployfile-locked');
  if (at < 0) return { locked: false };
  const raw = result.stdout.slice(at + 'deployfile-locked'.length).trim();
  return { locked: true, holder: parseLockInfo(raw), raw };
}

/**
 * `deploy unlock`: remove the lock whoever holds it. With `runId`, only
 * while it still belongs to that run, so a lock taken by a new deploy
 * between showing and removing survives.
 */
export async function removeLock(transport: Transport, runId?: string, options: LockScriptOptions = {}): Promise<boolean> {
  if (runId) return releaseLock(transport, runId, options);
  const result = await runScript(transport, `if [ -d ${LOCK} ]; then rm -rf ${LOCK} && echo deployfile-lock-released; fi`, { ...options, label: `remove the deploy lock ~/${LOCK_PATH}` });
  if (result.exitCode !== 0) throw scriptError(`remove the deploy lock ~/${LOCK_PATH}`, transport.target, result);
  return result.stdout.includes('deployfile-lock-released');
}
