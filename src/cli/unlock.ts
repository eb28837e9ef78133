import { someoneAtTerminal } from '../prompts/terminal.ts';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { EXIT } from '../core/errors.ts';
import { describeHolder, LOCK_PATH, readLock, removeLock, type LockInfo } from '../connection/lock.ts';
import { inquirerAsker } from '../prompts/interactive.ts';
import { withSite } from './site-connection.ts';

/**
 * The holder's process when it runs on this machine and is alive: its
 * command line (empty when unreadable). A live holder is most likely a
 * deploy still running; removing its lock would let a second one run
 * beside it. Other machines are never guessed about.
 */
export function liveLocalHolder(holder: LockInfo | null): { pid: number; command: string } | undefined {
  if (!holder || holder.host !== hostname() || !Number.isInteger(holder.pid) || holder.pid <= 0 || holder.pid === process.pid) return undefined;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: alive, but another user's.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  let command = '';
  try {
    command = readFileSync(`/proc/${holder.pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    // not Linux, or gone meanwhile
  }
  return { pid: holder.pid, command };
}

/**
 * `deploy unlock <site>`: show who holds the site's deploy lock, then remove
 * it; for a deploy that died without releasing it (kill -9, a laptop that
 * went to sleep). Exit 0 when the site ends up unlocked.
 */
export async function unlockCommand(
  siteName: string,
  flags: { file?: string; force?: boolean },
  out: NodeJS.WritableStream = process.stdout,
  ask: (question: string) => Promise<boolean> = (question) => inquirerAsker.confirm(null, question, false),
): Promise<number> {
  return withSite(siteName, flags, async (site, transport) => {
    const lock = await readLock(transport);
    if (!lock.locked) {
      out.write(`site ${site.name} is not locked (no ~/${LOCK_PATH} on ${transport.target})\n`);
      return EXIT.ok;
    }
    const holder = lock.holder;
    out.write(`site ${site.name} is locked by ${holder ? describeHolder(holder) : `an unknown holder (info: ${lock.raw || 'none'})`}\n`);
    if (holder?.deployfile) out.write(`  deployfile: ${holder.deployfile}\n`);
    const live = flags.force ? undefined : liveLocalHolder(holder);
    if (live) {
      const what = `its holder, process ${live.pid}${live.command ? ` (${live.command.slice(0, 200)})` : ''}, is still running on this machine`;
      const interactive = someoneAtTerminal(process.stdout);
      if (!interactive) {
        out.write(`not removed: ${what}; removing the lock would let another deploy run beside it. Stop it (kill ${live.pid}: it releases the lock itself), or remove the lock anyway with: deploy unlock ${site.name} --force\n`);
        return EXIT.failed;
      }
      if (!(await ask(`${what[0]?.toUpperCase()}${what.slice(1)}. Remove its lock anyway?`))) {
        out.write(`left the lock of site ${site.name} in place\n`);
        return EXIT.failed;
      }
    }
    // With the holder's run id, a lock taken by someone else since we looked survives.
    const removed = await removeLock(transport, holder?.runId || undefined);
    if (!removed) {
      out.write(`the lock of site ${site.name} changed hands since it was read; left in place (run deploy unlock ${site.name} again to see it)\n`);
      return EXIT.failed;
    }
    out.write(`removed the deploy lock of site ${site.name}\n`);
    return EXIT.ok;
  });
}
