import { EXIT } from '../core/errors.ts';
import { describeHolder, LOCK_PATH, readLock, removeLock } from '../executor/lock.ts';
import { withSite } from './site-connection.ts';

/**
 * `deploy unlock <site>`: show who holds the site's deploy lock, then remove
 * it; for a deploy that died without releasing it (kill -9, a laptop that
 * went to sleep). Exit 0 when the site ends up unlocked.
 */
export async function unlockCommand(siteName: string, flags: { file?: string }, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  return withSite(siteName, flags, async (site, transport) => {
    const lock = await readLock(transport);
    if (!lock.locked) {
      out.write(`site ${site.name} is not locked (no ~/${LOCK_PATH} on ${transport.target})\n`);
      return EXIT.ok;
    }
    const holder = lock.holder;
    out.write(`site ${site.name} is locked by ${holder ? describeHolder(holder) : `an unknown holder (info: ${lock.raw || 'none'})`}\n`);
    if (holder?.deployfile) out.write(`  deployfile: ${holder.deployfile}\n`);
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
