/**
 * From what exists (the inspection's facts) and what the site needs (its
 * settings and the files' text) to the steps that set it up: pure, so the
 * plan shown before anything changes is exactly what is applied, and a
 * second run finds nothing to do.
 */
import { dirname } from 'node:path';
import { unifiedDiff } from './diff.ts';
import type { Facts, PathFact } from './inspect.ts';
import type { ProvisionSettings } from './options.ts';
import { parseVassalIni } from '../uwsgi.ts';

/** One change, in the order it is applied. */
export type Step =
  /** `groupExists`: a group of the user's name is there already (useradd --user-group would refuse it). */
  | { kind: 'createUser'; title: string; user: string; shell: string; groupExists: boolean }
  | { kind: 'unlockPassword'; title: string; user: string }
  | { kind: 'authorizedKeys'; title: string; user: string; add: string[]; diff: string }
  | { kind: 'knownHosts'; title: string; user: string; add: string[]; diff: string }
  | { kind: 'safeDirectory'; title: string; user: string; path: string }
  /** `as` admin: root clones through the admin's forwarded agent, checking the host against `knownHostsFile`, then chowns it to `user`. */
  | { kind: 'clone'; title: string; user: string; origin: string; branch: string | undefined; codeDir: string; as: 'site' | 'admin'; knownHostsFile: string }
  | { kind: 'virtualenv'; title: string; user: string; python: string; args: string[]; virtualenv: string }
  | { kind: 'requirements'; title: string; user: string; codeDir: string; virtualenv: string; requirements: string; installedCopy: string }
  | { kind: 'socketDir'; title: string; dir: string; group: string; create: boolean }
  /** `write` false: the text is right, only the owner or mode is not. */
  | { kind: 'vassal'; title: string; path: string; content: string; owner: string; group: string; write: boolean; diff?: string }
  | { kind: 'nginx'; title: string; file: string; content: string; link: string | undefined; writeFile: boolean; diff?: string };

export interface Plan {
  site: string;
  /** What is in place already, one phrase each. */
  exists: string[];
  steps: Step[];
  /** Why nothing can be done until someone fixes something; each says what. */
  problems: string[];
}

/** What the plan needs besides the facts: the texts of the files it writes. */
export interface Wanted {
  settings: ProvisionSettings;
  /** The vassal's text, or undefined when there is neither a skeleton on the server nor a template. */
  vassal: string | undefined;
  /** Where that text comes from, e.g. the skeleton's path. */
  vassalSource: string;
  nginx: string;
  /** The socket directory the vassal uses, if any (see socketDirOf). */
  socketDir: string | undefined;
}

/** Path keys the inspection is asked for; see {@link inspectPaths}. */
type Key = 'authorizedKeys' | 'knownHosts' | 'origin' | 'codeDir' | 'git' | 'python' | 'virtualenv' | 'requirements' | 'installed' | 'vassal' | 'skeleton' | 'socketDir' | 'nginxFile' | 'nginxEnabled';

/** What to inspect for a site (the socket directory is asked separately, once the vassal's text is known). */
export function inspectPaths(s: ProvisionSettings): Record<string, { path: string; content?: boolean }> {
  const paths: Partial<Record<Key, { path: string; content?: boolean }>> = {
    authorizedKeys: { path: `~${s.user}/.ssh/authorized_keys`, content: true },
    knownHosts: { path: `~${s.user}/.ssh/known_hosts`, content: true },
    codeDir: { path: s.codeDir },
    git: { path: `${s.codeDir}/.git` },
    virtualenv: { path: s.virtualenv },
    python: { path: `${s.virtualenv}/bin/python` },
    requirements: { path: `${s.codeDir}/${s.requirements}`, content: true },
    installed: { path: s.installedCopy, content: true },
    vassal: { path: s.vassal, content: true },
    skeleton: { path: s.vassalSkeleton, content: true },
    nginxFile: { path: s.nginxFile, content: true },
  };
  if (s.origin?.startsWith('/')) paths.origin = { path: s.origin.replace(/\/+$/, '') };
  if (s.nginxEnabled) paths.nginxEnabled = { path: s.nginxEnabled };
  return paths;
}

/** The socket directory a site uses: the option, else the directory of the vassal's unix socket. */
export function socketDirOf(settings: ProvisionSettings, vassal: string | undefined): string | undefined {
  if (settings.socketDir) return settings.socketDir;
  const socket = vassal === undefined ? undefined : parseVassalIni(vassal, settings.vassal).socket;
  return socket && socket.address.startsWith('/') ? dirname(socket.address) : undefined;
}

const octal = (mode: number | undefined): string => (mode === undefined ? '?' : mode.toString(8).padStart(4, '0'));
const ownership = (f: PathFact): string => `${f.owner}:${f.group} ${octal(f.mode)}`;

/**
 * The plan for one site.
 *
 * @example
 * const plan = planSite(facts, { settings, vassal: skeletonText, nginx: serverBlock, socketDir: '/run/uwsgi' });
 * plan.steps.length === 0 // nothing to change
 */
export function planSite(facts: Facts, wanted: Wanted): Plan {
  const s = wanted.settings;
  const exists: string[] = [];
  const steps: Step[] = [];
  const problems: string[] = [];
  const path = (key: Key): PathFact => facts.paths[key] ?? { path: '', kind: 'missing' };
  const user = s.user;

  // The account.
  if (facts.user) {
    if (facts.user.uid === 0) problems.push(`the site user ${user} is uid 0: a site must have an account of its own`);
    exists.push(`user ${user} (uid ${facts.user.uid}, home ${facts.user.home})`);
    if (facts.user.password === 'locked') {
      steps.push({ kind: 'unlockPassword', title: `set ${user}'s password field from '!' to '*': sshd without PAM refuses a locked account even with a key (no password login either way)`, user });
    }
  } else {
    const groupExists = facts.groups[user] !== null && facts.groups[user] !== undefined;
    const group = groupExists ? `in the existing group ${user}` : `and its group ${user}`;
    steps.push({ kind: 'createUser', title: `create user ${user} ${group} (home /home/${user}, shell ${s.shell}, password '*': key login only)`, user, shell: s.shell, groupExists });
  }

  // The operator's keys.
  const keysFile = path('authorizedKeys');
  const present = new Set((keysFile.content ?? '').split('\n').map(keyBody).filter(Boolean));
  const add = s.authorizedKeys.map((line) => line.trim()).filter((line) => line !== '' && !present.has(keyBody(line)));
  if (s.authorizedKeys.length === 0) problems.push(`no public key to authorize for ${user}: set authorizedKeys, or identityFile with its .pub beside it`);
  if (add.length > 0) {
    steps.push({ kind: 'authorizedKeys', title: `add ${add.length} key${add.length === 1 ? '' : 's'} to ${keysFile.path || `~${user}/.ssh/authorized_keys`}`, user, add, diff: appendDiff(keysFile, add) });
  } else if (s.authorizedKeys.length > 0) {
    exists.push(`${s.authorizedKeys.length === 1 ? 'the key' : `all ${s.authorizedKeys.length} keys`} in ${keysFile.path}`);
  }

  // The git host's keys, for a clone or fetch over SSH.
  const hostsFile = path('knownHosts');
  const knownLines = new Set((hostsFile.content ?? '').split('\n').map((line) => line.trim()));
  const hosts = s.gitKnownHosts.map((line) => line.trim()).filter((line) => line !== '' && !knownLines.has(line));
  if (hosts.length > 0) {
    steps.push({ kind: 'knownHosts', title: `add ${hosts.length} git host key${hosts.length === 1 ? '' : 's'} to ${hostsFile.path || `~${user}/.ssh/known_hosts`}`, user, add: hosts, diff: appendDiff(hostsFile, hosts) });
  } else if (s.gitKnownHosts.length > 0) {
    exists.push(`the git host keys in ${hostsFile.path}`);
  }

  // git's ownership check: the origin (a path on this server) and the checkout, where owned by someone else.
  const origin = path('origin');
  const safe = new Set(facts.safeDirectories);
  const trusts = (dir: string): boolean => safe.has('*') || safe.has(dir);
  if (s.origin?.startsWith('/') && origin.kind === 'missing') problems.push(`the origin ${s.origin} does not exist on the server`);
  if (origin.kind !== 'missing' && origin.owner !== user && s.cloneAs === 'site') {
    if (trusts(origin.path)) exists.push(`git safe.directory ${origin.path} for ${user}`);
    else steps.push({ kind: 'safeDirectory', title: `git config --global --add safe.directory ${origin.path} for ${user} (the origin is ${origin.owner}'s: git refuses a repository of another user)`, user, path: origin.path });
  }

  // The code.
  const code = path('codeDir');
  if (code.kind === 'missing') {
    if (!s.origin) problems.push(`no origin to clone into ${s.codeDir}: set origin, or give the local working copy (localDir) an origin remote`);
    else {
      const how = s.cloneAs === 'admin' ? `as root through the admin's forwarded agent, then chown -R ${user}` : `as ${user}`;
      steps.push({ kind: 'clone', title: `clone ${s.origin}${s.branch ? ` (${s.branch})` : ''} into ${s.codeDir} ${how}`, user, origin: s.origin, branch: s.branch, codeDir: s.codeDir, as: s.cloneAs, knownHostsFile: hostsFile.path || `/home/${user}/.ssh/known_hosts` });
    }
  } else if (path('git').kind !== 'dir') {
    problems.push(`${s.codeDir} exists but is not a git checkout: move it away, or set codeDir`);
  } else {
    exists.push(`code at ${s.codeDir} (git checkout, ${code.owner}'s)`);
    if (code.owner !== user && !trusts(s.codeDir)) {
      steps.push({ kind: 'safeDirectory', title: `git config --global --add safe.directory ${s.codeDir} for ${user} (the checkout is ${code.owner}'s)`, user, path: s.codeDir });
    }
  }

  // The virtualenv and the requirements.
  if (path('virtualenv').kind === 'missing') {
    steps.push({ kind: 'virtualenv', title: `create the virtualenv ${s.virtualenv} as ${user} (${[s.python, '-m', 'venv', ...s.virtualenvArgs].join(' ')})`, user, python: s.python, args: s.virtualenvArgs, virtualenv: s.virtualenv });
  } else if (path('python').kind === 'missing') {
    problems.push(`${s.virtualenv} exists but has no bin/python: remove it (a virtualenv cannot be moved or repaired in place) or set virtualenv`);
  } else {
    exists.push(`virtualenv ${s.virtualenv}`);
  }
  const requirements = path('requirements');
  const installed = path('installed');
  const cloning = steps.some((step) => step.kind === 'clone');
  if (cloning || (requirements.kind === 'file' && requirements.content !== installed.content)) {
    steps.push({ kind: 'requirements', title: `pip install -r ${s.requirements} in ${s.virtualenv} as ${user}`, user, codeDir: s.codeDir, virtualenv: s.virtualenv, requirements: s.requirements, installedCopy: s.installedCopy });
  } else if (requirements.kind === 'file') {
    exists.push(`requirements installed (${s.requirements})`);
  }

  // The emperor's side: the group, the socket directory, the vassal.
  const gid = facts.groups[s.uwsgiGroup];
  if (gid === null || gid === undefined) problems.push(`no group ${s.uwsgiGroup} on the server: set up the uWSGI emperor first (groupadd --system ${s.uwsgiGroup}), or set uwsgiGroup`);
  const socketDir = path('socketDir');
  if (wanted.socketDir) {
    if (socketDir.kind === 'missing') {
      steps.push({ kind: 'socketDir', title: `create the socket directory ${wanted.socketDir} (root:${s.uwsgiGroup} 2775: setgid, group-writable)`, dir: wanted.socketDir, group: s.uwsgiGroup, create: true });
    } else if (socketDir.kind !== 'dir') {
      problems.push(`the socket directory ${wanted.socketDir} is not a directory`);
    } else if (socketDir.group !== s.uwsgiGroup || ((socketDir.mode ?? 0) & 0o2020) !== 0o2020) {
      steps.push({ kind: 'socketDir', title: `fix the socket directory ${wanted.socketDir} (is ${ownership(socketDir)}; needs group ${s.uwsgiGroup}, setgid, group-writable: chgrp ${s.uwsgiGroup}, chmod g+ws)`, dir: wanted.socketDir, group: s.uwsgiGroup, create: false });
    } else {
      exists.push(`socket directory ${wanted.socketDir} (${ownership(socketDir)})`);
    }
  }
  const vassal = path('vassal');
  if (wanted.vassal === undefined) {
    problems.push(`no vassal skeleton at ${s.vassalSkeleton} on the server: copy the emperor's app.skel there, or set vassalSkeleton or vassalTemplate`);
  } else if (vassal.kind !== 'missing' && vassal.kind !== 'file') {
    problems.push(`${s.vassal} exists and is not a file`);
  } else {
    const rightOwner = vassal.owner === user && vassal.group === s.uwsgiGroup && vassal.mode === 0o644;
    if (vassal.kind === 'missing' || vassal.content !== wanted.vassal) {
      const what = vassal.kind === 'missing' ? 'write' : 'rewrite';
      steps.push({ kind: 'vassal', title: `${what} the vassal ${s.vassal} from ${wanted.vassalSource} (${user}:${s.uwsgiGroup} 0644, atomically: the emperor starts it as ${user})`, path: s.vassal, content: wanted.vassal, owner: user, group: s.uwsgiGroup, write: true, diff: unifiedDiff(vassal.kind === 'missing' ? undefined : vassal.content, wanted.vassal, s.vassal) });
    } else if (!rightOwner) {
      steps.push({ kind: 'vassal', title: `set the vassal ${s.vassal} to ${user}:${s.uwsgiGroup} 0644 (is ${ownership(vassal)}; tyrant mode runs it as its owner and refuses uid or gid 0)`, path: s.vassal, content: wanted.vassal, owner: user, group: s.uwsgiGroup, write: false });
    } else {
      exists.push(`vassal ${s.vassal} (${ownership(vassal)})`);
    }
  }

  // nginx.
  const file = path('nginxFile');
  const link = path('nginxEnabled');
  if (file.kind !== 'missing' && file.kind !== 'file') problems.push(`${s.nginxFile} exists and is not a file`);
  if (s.nginxEnabled && link.kind !== 'missing' && !(link.kind === 'link' && link.target === s.nginxFile)) {
    problems.push(`${s.nginxEnabled} exists and is not a link to ${s.nginxFile}${link.target ? ` (it links to ${link.target})` : ''}: move it away`);
  }
  const writeFile = file.kind === 'missing' || file.content !== wanted.nginx;
  const linking = s.nginxEnabled !== undefined && link.kind === 'missing';
  if (writeFile || linking) {
    const parts = [writeFile ? `${file.kind === 'missing' ? 'write' : 'rewrite'} the nginx server block ${s.nginxFile}` : undefined, linking ? `link it from ${s.nginxEnabled}` : undefined].filter(Boolean);
    steps.push({
      kind: 'nginx',
      title: `${parts.join(', ')}; nginx -t, reload (on failure: the previous file back, no reload)`,
      file: s.nginxFile,
      content: wanted.nginx,
      link: linking ? s.nginxEnabled : undefined,
      writeFile,
      diff: writeFile ? unifiedDiff(file.kind === 'missing' ? undefined : file.content, wanted.nginx, s.nginxFile) : undefined,
    });
  } else {
    exists.push(`nginx server block ${s.nginxFile}${s.nginxEnabled ? ` (enabled by ${s.nginxEnabled})` : ''}`);
  }

  return { site: s.site, exists, steps, problems };
}

/** The diff of appending `lines` to a file, as the append step does it (a newline first when its last line lacks one). */
function appendDiff(file: PathFact, lines: string[]): string {
  const before = file.kind === 'file' ? (file.content ?? '') : undefined;
  const kept = before === undefined || before === '' || before.endsWith('\n') ? (before ?? '') : `${before}\n`;
  return unifiedDiff(before, `${kept}${lines.map((line) => `${line}\n`).join('')}`, file.path);
}

/** A public key line's type and base64 blob: the same key with another comment is the same key. */
function keyBody(line: string): string {
  const fields = line.trim().split(/\s+/);
  const at = fields.findIndex((field) => /^(ssh-|ecdsa-|sk-)/.test(field));
  return at < 0 ? '' : `${fields[at]} ${fields[at + 1] ?? ''}`;
}

/**
 * The plan as the operator reads it before saying yes: what exists, each
 * step, and the diff of each file it writes.
 */
export function renderPlan(plan: Plan, where: string): string {
  const lines = [`plan for ${plan.site} (${where}):`];
  for (const item of plan.exists) lines.push(`  exists: ${item}`);
  for (const problem of plan.problems) lines.push(`  problem: ${problem}`);
  for (const step of plan.steps) {
    lines.push(`  will: ${step.title}`);
    if ('diff' in step && step.diff) for (const line of step.diff.split('\n')) lines.push(`      ${line}`);
  }
  if (plan.steps.length === 0 && plan.problems.length === 0) lines.push('  nothing to change');
  return lines.join('\n');
}
