import { describe, expect, it } from 'vitest';
import { AbortError } from '../../../src/index.ts';
import { buildRelease } from '../../../tasks/releases/build.ts';
import { errorOf, scriptedContext } from '../../helpers/task-context.ts';

/** `df -Pk <releasesDir> | tail -n 1` on a filesystem with `availableKiB` free. */
const dfLine = (availableKiB: number) => ({ stdout: `/dev/vda1 20511312 ${20511312 - availableKiB} ${availableKiB} 99% /home\n` });

describe('buildRelease: the disk floor', () => {
  it('refuses to start when the releases\' filesystem has less free space than minFreeMiB, saying how much is free, the floor and what a release takes; nothing is changed', async () => {
    const c = scriptedContext();
    c.script('df -Pk', dfLine(150 * 1024 + 512));
    c.script('du -sk', { stdout: '48213\n' });
    const error = await errorOf(buildRelease({ minFreeMiB: 200 }).run(c));
    expect(error).toBeInstanceOf(AbortError);
    expect(error.message).toBe(
      'buildRelease: only 150 MiB free on the filesystem of /home/alleged/releases, below the floor of 200 MiB ' +
        '(a release takes about 48 MiB, plus a virtualenv when the requirements change). Free some space, keep fewer releases (keepReleases), ' +
        'or lower minFreeMiB. Nothing was changed.',
    );
    // Only looked: the releases directory made (to ask df about it), its free space, the live release's size.
    expect(c.recorder.lines).toEqual(['mkdir -p /home/alleged/releases', 'df -Pk /home/alleged/releases | tail -n 1', 'du -sk /home/alleged/Sites/alleged/ 2>/dev/null | cut -f1']);
  });

  it('the default floor is 200 MiB', async () => {
    const c = scriptedContext();
    c.script('df -Pk', dfLine(199 * 1024));
    const error = await errorOf(buildRelease().run(c));
    expect(error.message).toMatch(/^buildRelease: only 199 MiB free on the filesystem of \/home\/alleged\/releases, below the floor of 200 MiB \(a release takes about 0 MiB/);
  });

  it('goes on when the free space is at the floor or above', async () => {
    const c = scriptedContext();
    c.script('df -Pk', dfLine(200 * 1024));
    // Stop right after the check, at the next command: which layout the site has.
    c.script('if [ -L', { exitCode: 3 });
    const error = await errorOf(buildRelease().run(c));
    expect(error).not.toBeInstanceOf(AbortError);
    expect(c.recorder.lines.some((line) => line.startsWith('du '))).toBe(false);
    expect(c.recorder.lines.at(-1)).toContain('if [ -L /home/alleged/Sites/alleged ]');
  });

  it('a dry run does not look at the disk', async () => {
    const c = scriptedContext({ dryRun: true });
    try {
      await buildRelease({ minFreeMiB: 10 ** 9 }).run(c);
    } catch {
      // Whatever a dry run of the later steps says: the point is what it did not run.
    }
    expect(c.recorder.lines.some((line) => line.includes('df -Pk'))).toBe(false);
  });
});
