// What the plan task does (see ./index.ts for the task itself): read the
// working copy once, then ask each site, read-only, what a deploy would change.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sh, type Context } from '../../src/index.ts';
import { installedCopyOf } from '../install-requirements.ts';
import { LAST_COLLECT_MARKER, staticStateOf } from '../static-inputs.ts';
import { displayDir, localDirOf, resolveSite, shellPath, type ResolvedSiteOptions } from '../options.ts';
import { addedMigrations, irreversibleReason } from './migrations.ts';
import { describeRequirementsDiff, diffRequirements, requirementLines } from './requirements.ts';
import { PLAN_COMMITS_SHOWN, PLAN_RESULTS, type PlanOptions } from './index.ts';
import type { SitePlan } from './schema.ts';

/** Said on stderr by a read that found no file, so that it can exit 0. */
const ABSENT = '@@deployfile-plan: absent@@';

/** What the working copy a deploy pushes from is at; read once per working copy. */
interface LocalFacts {
  dir: string;
  head: string;
  branch: string;
  clean: boolean;
  changes: string[];
  /** The remote branch's SHA, or null when the remote could not be asked. */
  remote: string | null;
  remoteName: string;
}

/** What {@link plan} does on one site; loaded when the task first runs (see ./index.ts). */
export async function runPlan(c: Context, options: PlanOptions): Promise<void> {
  const site = resolveSite(c.site, options);
  const dir = localDirOf(c, options);
  const local = await c.runOnce(`deployfile.tasks.plan.local:${dir}`, `read ${displayDir(dir)}`, (l) => readLocal(l, dir));
  const result = await planSite(c, site, local, options);
  const results = c.shared.get(PLAN_RESULTS);
  if (results instanceof Map) results.set(c.site.name, result);
}

async function readLocal(c: Context, dir: string): Promise<LocalFacts> {
  if (!existsSync(dir)) c.abort(`plan: the working copy ${dir} does not exist; set localDir to the checkout this site is deployed from.`);
  const here = c.cd(dir).with({ quiet: true });
  const inside = await here.local('if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then echo yes; fi');
  if (inside.stdout.trim() !== 'yes') c.abort(`plan: ${dir} is not a git checkout; run deploy plan from your project's checkout, or set localDir.`);
  const git = async (command: string): Promise<string> => (await here.local(command)).stdout.trim();
  const head = await git('git rev-parse HEAD');
  const branch = await git('git rev-parse --abbrev-ref HEAD');
  // Not trimmed: the status columns start with a space.
  const changes = (await here.local('git --no-optional-locks status --porcelain --untracked-files=no')).stdout.split('\n').filter((l) => l.trim() !== '');
  const remoteName = (await here.warnOnly().local(sh`git config ${`branch.${branch}.remote`}`)).stdout.trim() || 'origin';
  // Asks the remote, changes nothing here (a fetch would move remote-tracking refs).
  const asked = await here.warnOnly().with({ timeout: '30s' }).local(sh`git ls-remote ${remoteName} ${`refs/heads/${branch}`}`);
  const remote = asked.ok ? (asked.stdout.trim().split(/\s/)[0] ?? '') : null;
  return { dir, head, branch, clean: changes.length === 0, changes, remote, remoteName };
}

async function planSite(c: Context, site: ResolvedSiteOptions, local: LocalFacts, options: PlanOptions): Promise<SitePlan> {
  const warnings: string[] = [];
  const warn = (message: string): void => {
    warnings.push(message);
    c.warn(message);
  };
  const quiet = { quiet: true };
  const server = c.cd(site.codeDir);
  const here = c.cd(local.dir).with(quiet);
  const { git, gitAsks, gitShow } = localGit(here);

  // -- The server, as the site user: read only.
  const head = await server.warnOnly().run('git rev-parse HEAD', quiet);
  if (!head.ok) c.abort(`plan: cannot read the revision of ${site.codeDir}: ${head.stderr.trim() || `exit code ${head.exitCode}`}. Is the site deployed (deploy provision), and is codeDir right?`);
  const served = head.stdout.trim();
  const generated = `${site.settings}/settings.py`;
  // --no-optional-locks: a plain status refreshes (rewrites) the index; plan writes nothing.
  const edits = (await server.run('git --no-optional-locks status --porcelain --untracked-files=no', quiet)).stdout.split('\n').filter((l) => l.trim() !== '' && l.slice(3) !== generated);
  if (edits.length > 0) warn(`${site.codeDir} has local edits on the server, which would stop a deploy at fetch: ${edits.slice(0, 5).map((l) => l.slice(3)).join(', ')}${edits.length > 5 ? ` and ${edits.length - 5} more` : ''}`);
  // Reads that may find nothing exit 0 either way (views would show a failed `cat` or `test` as a failure): absence is said on stderr.
  const read = async (where: Context, path: ReturnType<typeof shellPath> | string, shown: string): Promise<{ ok: boolean; out: string }> => {
    const r = await where.run(sh`if [ -f ${path} ]; then cat ${path}; else echo ${ABSENT} >&2; fi`, { ...quiet, label: `cat ${shown} (if it exists)` });
    return { ok: !r.stderr.includes(ABSENT), out: r.stdout };
  };
  const servedSettings = await read(server, generated, generated);
  const copy = installedCopyOf(c.site, site.virtualenv, options);
  const installed = await read(c, shellPath(copy), copy);

  // -- The working copy: what deploy would push, and the files between.
  const ship = local.head;
  if (!local.clean) warn(`${displayDir(local.dir)} has uncommitted changes to tracked files (${local.changes.slice(0, 3).map((l) => l.slice(3)).join(', ')}${local.changes.length > 3 ? ', ...' : ''}): deploy's push would refuse them; commit or stash first`);
  if (local.branch === 'HEAD') warn(`${displayDir(local.dir)} has a detached HEAD: deploy's push would refuse it (it pushes a branch); git switch <branch> first`);
  const pushed = local.remote === null ? null : local.remote === ship;
  if (local.remote === null) warn(`could not ask ${local.remoteName} where ${local.branch} is (git ls-remote failed): deploy's push may fail the same way`);
  else if (!pushed) c.log(`${local.branch} at ${ship.slice(0, 7)} is not pushed yet (${local.remoteName} has ${local.remote ? local.remote.slice(0, 7) : 'no such branch'}); deploy pushes it`);

  const known = served === ship || (await gitAsks(sh`git cat-file -e ${`${served}^{commit}`}`, `is ${served.slice(0, 7)} known`));
  let commits: SitePlan['commits'] = [];
  let commitCount = 0;
  let changedFiles = '';
  let history: SitePlan['history'] = served === ship ? 'same' : known ? 'behind' : 'unknown';
  if (!known) {
    warn(`the server is at ${served.slice(0, 12)}, a commit ${displayDir(local.dir)} does not have: the server's history has commits the working copy lacks (diverged, or pushed from elsewhere); a deploy would stop at fetch. git fetch here, then plan again`);
  } else if (served !== ship) {
    if (await gitAsks(sh`git merge-base --is-ancestor ${ship} ${served}`, `git merge-base --is-ancestor ${ship.slice(0, 7)} ${served.slice(0, 7)}`)) {
      history = 'ahead';
      warn(`the server (${served.slice(0, 7)}) is ahead of ${local.branch} (${ship.slice(0, 7)}): a deploy would not fast-forward it; pull here first`);
    } else if (!(await gitAsks(sh`git merge-base --is-ancestor ${served} ${ship}`, `git merge-base --is-ancestor ${served.slice(0, 7)} ${ship.slice(0, 7)}`))) {
      history = 'diverged';
      warn(`the server (${served.slice(0, 7)}) and ${local.branch} (${ship.slice(0, 7)}) have diverged: a deploy would stop at fetch (the server's checkout cannot be fast-forwarded)`);
    }
    commitCount = Number((await git(sh`git rev-list --count ${`${served}..${ship}`}`)).out) || 0;
    const log = await git(sh`git log ${`-n${PLAN_COMMITS_SHOWN}`} --format=%h%x09%s ${`${served}..${ship}`}`);
    commits = log.out.split('\n').filter(Boolean).map((line) => ({ sha: line.split('\t')[0]!, subject: line.split('\t').slice(1).join('\t') }));
    changedFiles = (await git(sh`git diff --name-status -M ${served} ${ship}`)).out;
  }
  const upToDate = served === ship;
  if (upToDate) c.log(`up to date: the site is at ${ship.slice(0, 12)} (${local.branch})`);
  else c.log(`the site is at ${served.slice(0, 7)}; a deploy would ship ${ship.slice(0, 7)} (${local.branch})${known ? `, ${commitCount} commit${commitCount === 1 ? '' : 's'}:` : ''}`);
  for (const commit of commits) c.log(`  ${commit.sha} ${commit.subject}`);
  if (commitCount > commits.length) c.log(`  ... and ${commitCount - commits.length} more`);

  // -- Requirements. In place: pip runs unless the file is byte-identical to the
  // last installed copy. Releases: a virtualenv per requirements hash, pip runs
  // only for a hash not built before (tasks/releases/build.ts).
  const nextRequirements = await gitShow(ship, site.requirements);
  let requirements: SitePlan['requirements'];
  const noDiff = { added: [], removed: [], changed: [] };
  const changedRequirements = (before: string): SitePlan['requirements'] => {
    const diff = diffRequirements(before, nextRequirements.ok ? nextRequirements.out : '');
    c.log(`requirements: ${nextRequirements.ok ? describeRequirementsDiff(diff) : `${site.requirements} is missing from ${ship.slice(0, 7)}`}: pip install would run`);
    return {
      file: site.requirements,
      status: 'changed',
      added: diff.added.map((d) => ({ name: d.name, to: d.to! })),
      removed: diff.removed.map((d) => ({ name: d.name, from: d.from! })),
      changed: diff.changed.map((d) => ({ name: d.name, from: d.from!, to: d.to! })),
    };
  };
  // The virtualenv the new code would run in: its record says what the last collect read.
  let shipVenv = site.virtualenv;
  if (site.layout === 'releases') {
    const venv = `${site.virtualenv}@${createHash('sha256').update(nextRequirements.raw).digest('hex').slice(0, 12)}`;
    shipVenv = venv;
    const built = await c.run(sh`if [ -f ${shellPath(`${venv}/.deployfile-complete`)} ]; then echo built; fi`, { ...quiet, label: `test -f ${venv}/.deployfile-complete` });
    if (built.stdout.trim() === 'built') {
      requirements = { file: site.requirements, status: 'unchanged', ...noDiff };
      c.log(`requirements: a virtualenv for them is built (${venv}): pip would not run`);
    } else {
      requirements = changedRequirements((await read(server, site.requirements, site.requirements)).out);
    }
  } else if (!installed.ok) {
    requirements = { file: site.requirements, status: 'first', ...noDiff };
    c.log(`requirements: no record of an earlier install (${copy}): pip install -r ${site.requirements} would run`);
  } else if (nextRequirements.ok && (nextRequirements.raw === installed.out)) {
    requirements = { file: site.requirements, status: 'unchanged', ...noDiff };
    c.log(`requirements: ${site.requirements} unchanged since the last install: pip would be skipped`);
  } else {
    requirements = changedRequirements(installed.out);
  }
  if (site.layout === 'in-place' && requirements.status !== 'unchanged' && nextRequirements.ok) {
    requirements = { ...requirements, pip: await pipDryRun(c, site, nextRequirements.raw) };
  }

  // -- Static files: collectstatic is skipped when no input of the last collect changed.
  const files = changedFiles.split('\n').filter(Boolean).map((line) => line.split('\t').at(-1)!);
  let staticPlan: SitePlan['static'];
  const staticInputs = files.filter((f) => /(^|\/)static\//.test(f) || f.startsWith(`${site.settings}/`));
  // A record of an in-place collect does not count for a release, nor the other way round (see static-inputs.ts).
  const staticState = staticStateOf(shipVenv);
  const recordKind = (await c.run(sh`if [ -f ${shellPath(staticState)} ]; then if grep -q '"release"' ${shellPath(staticState)}; then echo releases; else echo in-place; fi; fi`, { ...quiet, label: `test -f ${staticState}` })).stdout.trim();
  // Releases: the site's last collect into STATIC_ROOT must be the one that record describes.
  const lastCollect = site.layout === 'releases' && recordKind === 'releases' ? await read(c, LAST_COLLECT_MARKER, `~/${LAST_COLLECT_MARKER}`) : undefined;
  if (options.skipUnchanged === false) staticPlan = { status: 'always', reason: 'skipUnchanged is off: collectstatic runs on every deploy' };
  else if (recordKind !== site.layout) staticPlan = { status: 'collected', reason: `no record of an earlier collect${site.layout === 'releases' ? ` of a release with ${shipVenv}` : ''} on the server` };
  else if (lastCollect && !lastCollect.out.includes(JSON.stringify(staticState))) staticPlan = { status: 'collected', reason: `another collect has written to STATIC_ROOT since the last one with ${shipVenv}` };
  else if (staticInputs.length > 0) staticPlan = { status: 'collected', reason: `static inputs differ: ${staticInputs.slice(0, 5).join(', ')}${staticInputs.length > 5 ? ` and ${staticInputs.length - 5} more` : ''}` };
  else if (!known) staticPlan = { status: 'collected', reason: 'the files that differ are unknown here (the server is at a commit this working copy lacks)' };
  else staticPlan = { status: 'skipped', reason: 'no static file or settings differ' };
  c.log(`static files: ${staticPlan.status === 'skipped' ? 'unchanged: collectstatic would be skipped' : `collectstatic would run (${staticPlan.reason})`}`);
  // `always` is how the deploy works, not a change: with nothing else new, the same files are collected again.

  // -- Migrations: the migration files the new revision adds.
  const migrations: SitePlan['migrations'] = [];
  for (const m of addedMigrations(changedFiles)) {
    const source = await gitShow(ship, m.path);
    const irreversible = source.ok ? irreversibleReason(source.out) : undefined;
    migrations.push(irreversible ? { ...m, irreversible } : m);
  }
  if (migrations.length === 0) c.log(known ? 'migrations: none added' : 'migrations: unknown (see above)');
  for (const m of migrations) c.log(`migration: ${m.app}.${m.name}${m.irreversible ? ` (cannot be reversed: ${m.irreversible})` : ''}`);

  // -- Production settings: what settings.py is now, against what the deploy would copy over it.
  const productionPath = `${site.settings}/settings_production.py`;
  const production = await gitShow(ship, productionPath);
  let settings: SitePlan['settings'];
  if (!production.ok) {
    warn(`${ship.slice(0, 7)} has no ${productionPath}: a deploy would stop at fetch`);
    settings = { file: generated, changed: false };
  } else {
    const before = servedSettings.ok ? servedSettings.out : '';
    const after = `${production.out}\n`;
    if (before === after || before === production.out) settings = { file: generated, changed: false };
    else settings = { file: generated, changed: true, diff: await unifiedDiff(here, before, after, `${site.site}:${site.codeDir}/${generated}`, `${local.branch}:${productionPath}`) };
  }
  if (!settings.changed) c.log(`settings: ${generated} would stay as it is`);
  else {
    c.log(`settings: ${generated} would change:`);
    for (const line of settings.diff!.split('\n')) c.log(`  ${line}`);
  }

  // The vassal ini is the server's, written by provision; deploy only touches it.
  const vassal = { file: site.vassal, changed: false, reason: 'deploy does not write it (deploy provision does)' };

  const wouldChange = !upToDate || requirements.status !== 'unchanged' || staticPlan.status === 'collected' || migrations.length > 0 || settings.changed;
  const notes = [
    upToDate ? 'up to date' : history === 'behind' ? `${commitCount} commit${commitCount === 1 ? '' : 's'}` : `${history} (a deploy would stop at fetch)`,
    requirements.status !== 'unchanged' && 'pip',
    staticPlan.status === 'collected' && 'collectstatic',
    migrations.length > 0 && `${migrations.length} migration${migrations.length === 1 ? '' : 's'}`,
    settings.changed && 'settings',
    warnings.length > 0 && `${warnings.length} warning${warnings.length === 1 ? '' : 's'}`,
  ].filter(Boolean);
  c.report(notes.join(', '));
  return {
    site: c.site.name,
    localDir: local.dir,
    layout: site.layout,
    served,
    ship,
    branch: local.branch,
    upToDate,
    history,
    commits,
    commitCount,
    warnings,
    local: { clean: local.clean, pushed },
    requirements,
    static: staticPlan,
    migrations,
    settings,
    vassal,
    wouldChange,
  };
}

/** Git in the working copy, for answers: a command's output, a yes/no question, a revision's file. */
function localGit(here: Context) {
  const git = async (command: ReturnType<typeof sh> | string): Promise<{ ok: boolean; out: string }> => {
    const r = await here.warnOnly().local(command);
    return { ok: r.ok, out: r.stdout.replace(/\n$/, '') };
  };
  /** A yes/no question to git, answered on stdout with exit 0 either way. */
  const gitAsks = async (command: ReturnType<typeof sh>, label: string): Promise<boolean> => (await here.local(sh`if ${command} 2>/dev/null; then echo yes; fi`, { label: `${label} (here)` })).stdout.trim() === 'yes';
  /** A file of a revision, or ok: false when the revision has no such file. */
  const gitShow = async (revision: string, path: string): Promise<{ ok: boolean; out: string; raw: string }> => {
    const spec = `${revision}:./${path}`;
    const r = await here.local(sh`if git cat-file -e ${spec} 2>/dev/null; then git show ${spec}; else echo ${ABSENT} >&2; fi`, { label: `git show ${revision.slice(0, 7)}:${path} (here)` });
    return { ok: !r.stderr.includes(ABSENT), out: r.stdout.replace(/\n$/, ''), raw: r.stdout };
  };
  return { git, gitAsks, gitShow };
}

/** `diff -u` of two texts, through temporary files on this machine (removed after). */
async function unifiedDiff(c: Context, before: string, after: string, beforeLabel: string, afterLabel: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'deployfile-plan-'));
  try {
    writeFileSync(join(dir, 'a'), before);
    writeFileSync(join(dir, 'b'), after);
    // diff exits 1 when the files differ, which is the answer, not a failure.
    const r = await c.local(sh`diff -u --label ${beforeLabel} --label ${afterLabel} ${join(dir, 'a')} ${join(dir, 'b')}; [ $? -le 1 ]`, { quiet: true, label: `diff -u ${beforeLabel} ${afterLabel}` });
    return r.stdout.replace(/\n$/, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * What pip itself would install into the site's virtualenv for the new
 * requirements: `pip install --dry-run --report` (pip 22.2 and later), which
 * resolves without installing. No cache, so nothing is written in the site
 * user's home; bounded, as it may ask a package index.
 */
async function pipDryRun(c: Context, site: ResolvedSiteOptions, requirements: string): Promise<{ install: Array<{ name: string; version: string }> } | { error: string }> {
  // As arguments, not a file: nothing is written on the server, and a site user's /dev/stdin is not always openable.
  // Option lines (-r base.txt, --index-url URL) split as pip splits them in a file.
  const args = requirementLines(requirements).flatMap((line) => (line.startsWith('-') ? line.split(/\s+/) : [line]));
  const report = await c
    .cd(site.codeDir)
    .prefix(sh`. ${shellPath(site.virtualenv)}/bin/activate`)
    .warnOnly()
    .with({ timeout: '120s' })
    .run(sh`pip install --dry-run --no-cache-dir --disable-pip-version-check --quiet --report - ${args}`, { quiet: true, label: `pip install --dry-run --report - <the requirements of ${site.requirements} in the new revision>` });
  try {
    if (!report.ok) throw new Error(report.stderr.trim().split('\n').at(-1) || `exit code ${report.exitCode}`);
    const parsed = JSON.parse(report.stdout) as { install?: Array<{ metadata?: { name?: string; version?: string } }> };
    const install = (parsed.install ?? []).map((i) => ({ name: i.metadata?.name ?? '?', version: i.metadata?.version ?? '?' }));
    c.log(install.length === 0 ? 'pip --dry-run: nothing to install, every requirement is already satisfied' : `pip --dry-run would install: ${install.map((i) => `${i.name}==${i.version}`).join(', ')}`);
    return { install };
  } catch (error) {
    const message = `pip install --dry-run --report could not tell (${error instanceof Error ? error.message : String(error)})`;
    c.log(message);
    return { error: message };
  }
}
