import { AbortError, quote, raw, sh, task, type Context, type TaskDefinition } from '../../src/index.ts';
import { displayDir, shellPath } from '../options.ts';
import { pushedFor } from '../push.ts';
import { appendRecord, migrationStateOf, operator, readReleases, recordCommand, relinkLines, releasePaths, uninterruptible, type ReleaseOptions, type ReleasePaths } from './layout.ts';
import { currentRelease, releaseId } from './record.ts';
import { checkStaticInputs, LAST_COLLECT_MARKER, recordStaticInputs, staticStateOf, type StaticPlace } from '../static-inputs.ts';

/** The `c.shared` key (per site) under which `buildRelease` leaves the release it built for `activateRelease`. */
export const BUILT_PREFIX = 'deployfile.tasks.builtRelease:';

/** What `buildRelease` built. */
export interface BuiltRelease {
  id: string;
  dir: string;
  revision: string;
  venv: string;
}

/** The directories collectstatic and the file cache need, in the home directory (see the in-place `collectstatic`). */
const HOME_DIRS = raw('static caches/django');

/**
 * Build the new release beside the live one, touching nothing a reload
 * would load: convert an in-place site on its first deploy in this layout,
 * fetch into the repository cached on the server, check out the pushed
 * revision into `~/releases/<id>`, copy its production settings in, give it
 * the virtualenv of its requirements (one per requirements hash; pip runs
 * only for a hash not built before) and collect its static files into the
 * shared static root, so the live release's files stay available (skipped
 * when they are the same as the last release's: `skipUnchanged`).
 *
 * @example
 * tasks: { buildRelease: buildRelease({ keepReleases: 10 }) }
 */
export function buildRelease(options: ReleaseOptions = {}): TaskDefinition {
  return task({
    description: 'Build the new release beside the live one (code, production settings, virtualenv, static files)',
    run: async (c) => {
      const paths = releasePaths(c, options);
      await checkFreeSpace(c, paths);
      const shape = (await c.run(sh`if [ -L ${paths.codeDir} ]; then echo link; elif [ -d ${paths.codeDir} ]; then echo dir; else echo none; fi`, { quiet: true })).stdout.trim();
      if (shape === 'dir') await convertInPlaceSite(c, paths);
      else if (shape === 'none' && !c.dryRun) await cloneRepoCache(c, paths);

      const git = sh`git --git-dir=${paths.repoCache}`;
      await c.run(sh`${git} fetch --quiet origin`);
      const revision = await targetRevision(c, paths);
      const id = releaseId(revision, new Date());
      const dir = `${paths.releasesDir}/${id}`;
      await c.run(sh`${git} worktree add --quiet --detach ${dir} ${revision}`);
      const release = c.cd(dir);
      await release.run(sh`cp ${paths.settings}/settings_production.py ${paths.settings}/settings.py`);
      const venv = await virtualenvFor(c, paths, dir);
      await collectInto(c, release.prefix(sh`. ${venv}/bin/activate`), { state: staticStateOf(venv), settingsDir: `${dir}/${paths.settings}`, release: dir }, options.skipUnchanged !== false && !c.dryRun);
      await appendRecord(c, paths, { event: 'built', release: id, revision, venv, operator: operator() });
      if (paths.migrate) {
        // Before the switch, as Django expects: the live code keeps working on the migrated schema
        // for the moments until the reload (write migrations that allow it).
        await release.prefix(sh`. ${venv}/bin/activate`).run('./manage.py migrate --noinput');
        if (!c.dryRun) await appendRecord(c, paths, { event: 'migrations', release: id, state: await migrationStateOf(c, dir, venv) });
      }
      const built: BuiltRelease = { id, dir, revision, venv };
      c.shared.set(BUILT_PREFIX + c.site.name, built);
      c.log(`built release ${id} in ${dir} with ${venv}`);
    },
  });
}

/**
 * collectstatic into the shared static root, unless the release's static
 * inputs have the same content as those of the last release collected
 * with this virtualenv (its record is in the virtualenv, as pip's is): a
 * code-only release then skips a start of Django, and says so.
 */
async function collectInto(c: Context, inVenv: Context, place: StaticPlace, skipping: boolean): Promise<void> {
  const verdict = skipping ? await checkStaticInputs(c, place) : undefined;
  if (verdict?.unchanged) {
    c.log(`static files unchanged since the last collect (${verdict.files} files in ${verdict.staticRoot}): not collecting`);
    return;
  }
  await c.run(sh`mkdir -p ${HOME_DIRS} && rm -f ${LAST_COLLECT_MARKER}`);
  const collected = await inVenv.run('./manage.py collectstatic --noinput');
  if (skipping && !collected.failed) await recordStaticInputs(c, inVenv, place);
}

async function checkFreeSpace(c: Context, paths: ReleasePaths): Promise<void> {
  if (c.dryRun) return;
  await c.run(sh`mkdir -p ${paths.releasesDir}`, { quiet: true });
  const df = await c.run(sh`df -Pk ${paths.releasesDir} | tail -n 1`, { quiet: true });
  const availableKiB = Number(df.stdout.trim().split(/\s+/)[3]);
  if (!Number.isFinite(availableKiB) || availableKiB >= paths.minFreeMiB * 1024) return;
  const size = await c.warnOnly().run(sh`du -sk ${paths.codeDir}/ 2>/dev/null | cut -f1`, { quiet: true });
  const releaseMiB = Math.ceil(Number(size.stdout.trim() || 0) / 1024);
  c.abort(
    `buildRelease: only ${Math.floor(availableKiB / 1024)} MiB free on the filesystem of ${paths.releasesDir}, below the floor of ${paths.minFreeMiB} MiB ` +
      `(a release takes about ${releaseMiB} MiB, plus a virtualenv when the requirements change). Free some space, keep fewer releases (keepReleases), ` +
      'or lower minFreeMiB. Nothing was changed.',
  );
}

/** The revision to build: what push pushed from this site's working copy, else the tip of the branch the site follows. */
async function targetRevision(c: Context, paths: ReleasePaths): Promise<string> {
  const git = sh`git --git-dir=${paths.repoCache}`;
  const pushed = pushedFor(c, paths);
  if (pushed) {
    if (c.dryRun) return pushed.revision;
    const has = await c.warnOnly().run(sh`${git} cat-file -e ${`${pushed.revision}^{commit}`}`, { quiet: true });
    if (has.failed) {
      const url = (await c.warnOnly().run(sh`${git} remote get-url origin`, { quiet: true })).stdout.trim();
      c.abort(
        `buildRelease: this run pushed ${pushed.revision} from ${displayDir(pushed.localDir)}, but ${paths.repoCache} (origin ${url || 'unknown'}) does not have it after fetching. ` +
          'Is this site deployed from another repository? Set its localDir. Nothing was changed.',
      );
    }
    return pushed.revision;
  }
  const branch = (await c.warnOnly().run(sh`${git} config deployfile.branch`, { quiet: true })).stdout.trim() || 'main';
  if (c.dryRun) return `origin/${branch}`;
  return (await c.run(sh`${git} rev-parse ${`refs/remotes/origin/${branch}^{commit}`}`, { quiet: true })).stdout.trim();
}

/** A site with no code yet: the cache is cloned from the `repository` option. */
async function cloneRepoCache(c: Context, paths: ReleasePaths): Promise<void> {
  const exists = (await c.run(sh`if [ -d ${paths.repoCache} ]; then echo yes; fi`, { quiet: true })).stdout.trim() === 'yes';
  if (exists) return;
  if (!paths.repository) {
    c.abort(`buildRelease: ${paths.codeDir} does not exist and no repository is set to clone; set the repository option (or var) to the site's git URL. Nothing was changed.`);
  }
  await setUpRepoCache(c, paths, paths.repository, 'main');
}

async function setUpRepoCache(c: Context, paths: ReleasePaths, source: string, branch: string, url = source): Promise<void> {
  const git = sh`git --git-dir=${paths.repoCache}`;
  await c.run(sh`mkdir -p ${paths.repoCache}/.. && git clone --quiet --bare ${source} ${paths.repoCache}`);
  // A bare clone fetches nothing by default: track the origin's branches as remote refs.
  await c.run(sh`${git} remote set-url origin ${url} && ${git} config remote.origin.fetch '+refs/heads/*:refs/remotes/origin/*' && ${git} config deployfile.branch ${branch}`, { quiet: true });
}

/**
 * The first deploy in this layout: the in-place checkout becomes the first
 * release and `~/Sites/<site>` a link to it; the virtualenv gets a new one
 * built for its requirements (a virtualenv cannot be moved), the old one is
 * set aside, not deleted. The running app keeps running throughout (its
 * processes hold their directories open); the switch is one rename each,
 * in one script that Ctrl-C cannot stop half-way. Then a reload proves the
 * converted site serves, and if it does not, the conversion is undone.
 */
async function convertInPlaceSite(c: Context, paths: ReleasePaths): Promise<void> {
  const code = c.cd(paths.codeDir);
  const head = (await code.run('git rev-parse HEAD', { quiet: true })).stdout.trim();
  if (c.dryRun) {
    c.log(`would convert ${paths.codeDir} into the first release, with a new virtualenv for its requirements`);
    return;
  }
  const url = (await code.run('git remote get-url origin', { quiet: true })).stdout.trim();
  const branch = (await code.run('git rev-parse --abbrev-ref HEAD', { quiet: true })).stdout.trim();
  c.log(`converting ${paths.codeDir} (at ${head.slice(0, 12)}, ${branch} from ${url}) into the first release`);
  const exists = (await c.run(sh`if [ -d ${paths.repoCache} ]; then echo yes; fi`, { quiet: true })).stdout.trim() === 'yes';
  if (!exists) await setUpRepoCache(c, paths, paths.codeDir, branch === 'HEAD' ? 'main' : branch, url);

  const venv = await virtualenvFor(c, paths, paths.codeDir);
  const id = releaseId(head, new Date(Date.now() - 1000));
  const dir = `${paths.releasesDir}/${id}`;
  const setAside = `${paths.virtualenv}.pre-releases`;
  const convert = [
    `mkdir -p ${quote(paths.releasesDir)}`,
    `mv ${quote(paths.codeDir)} ${quote(dir)}`,
    relinkLines([[paths.codeDir, dir]]),
    `if [ -d ${quote(paths.virtualenv)} ] && [ ! -L ${quote(paths.virtualenv)} ]; then rm -rf ${quote(setAside)}; mv ${quote(paths.virtualenv)} ${quote(setAside)}; fi`,
    relinkLines([[paths.virtualenv, venv]]),
    // Recorded in the same step: a deploy killed right after it leaves a release the record knows.
    recordCommand(paths, { event: 'built', release: id, revision: head, venv, converted: true, operator: operator() }, { event: 'activated', release: id, operator: operator() }),
  ].join(' && ');
  await c.run(sh`sh -c ${uninterruptible(convert)}`, { label: `move ${paths.codeDir} to ${dir} and link it back, in one step` });
  if (paths.migrate) await appendRecord(c, paths, { event: 'migrations', release: id, state: await migrationStateOf(c, dir, venv) });
  try {
    await c.invoke('touchVassalIni');
  } catch (error) {
    // Back to the in-place layout, as it was, then reloaded.
    const undo = [
      `rm -f ${quote(paths.codeDir)}`,
      `mv ${quote(dir)} ${quote(paths.codeDir)}`,
      `rm -f ${quote(paths.virtualenv)}`,
      `if [ -d ${quote(setAside)} ]; then mv ${quote(setAside)} ${quote(paths.virtualenv)}; fi`,
    ].join(' && ');
    await c.run(sh`sh -c ${uninterruptible(undo)}`, { label: `undo the conversion of ${paths.codeDir}` });
    await appendRecord(c, paths, { event: 'removed', release: id });
    await c.warnOnly().run(sh`touch ${shellPath(paths.vassal)}`);
    throw new AbortError(
      `buildRelease: the site did not serve after its conversion to releases (with a new virtualenv ${venv}), so the conversion was undone: ` +
        `${paths.codeDir} is a directory again and the old virtualenv is back.\n${error instanceof Error ? error.message : String(error)}`,
    );
  }
  await appendRecord(c, paths, { event: 'verified', release: id });
}

/**
 * The virtualenv for a release's requirements: `<virtualenv>@<hash>`, built
 * once per requirements hash with the same Python (and the same
 * system-site-packages choice) as the site's current one. A build pip did
 * not finish is built again.
 */
async function virtualenvFor(c: Context, paths: ReleasePaths, codeDir: string): Promise<string> {
  const code = c.cd(codeDir);
  const hash = c.dryRun ? '<hash>' : (await code.run(sh`sha256sum < ${paths.requirements} | cut -c1-12`, { quiet: true })).stdout.trim();
  const venv = `${paths.virtualenv}@${hash}`;
  const done = `${venv}/.deployfile-complete`;
  if (!c.dryRun && (await c.run(sh`if [ -f ${done} ]; then echo yes; fi`, { quiet: true })).stdout.trim() === 'yes') {
    c.log(`requirements unchanged: reusing ${venv}`);
    return venv;
  }
  // The base Python of the current virtualenv, so a new release runs on the Python uWSGI's plugin embeds.
  const python = (await c.run(sh`if [ -x ${paths.virtualenv}/bin/python ]; then echo ${paths.virtualenv}/bin/python; else echo python3; fi`, { quiet: true })).stdout.trim() || 'python3';
  const systemSite = await c.run(sh`if grep -qi '^include-system-site-packages *= *true' ${paths.virtualenv}/pyvenv.cfg 2>/dev/null; then echo --system-site-packages; fi`, { quiet: true });
  const flags = systemSite.stdout.trim() ? ['--system-site-packages'] : [];
  await c.run(sh`rm -rf ${venv} && ${python} -m venv ${flags} ${venv}`);
  await code.prefix(sh`. ${venv}/bin/activate`).run(sh`pip install -r ${paths.requirements}`);
  await c.run(sh`touch ${done}`, { quiet: true });
  return venv;
}

/** What `buildRelease` built for this site in this run. */
export function builtFor(c: Context): BuiltRelease | undefined {
  return c.shared.get(BUILT_PREFIX + c.site.name) as BuiltRelease | undefined;
}

/** The release live now, from the record (undefined before the first). */
export async function liveRelease(c: Context, paths: ReleasePaths) {
  return currentRelease(await readReleases(c, paths));
}
