/**
 * `deploy doctor`'s verdicts: the facts gathered on the server (facts.ts)
 * judged into pass / warn / fail, each with its fix in one line. Pure: no
 * I/O, so every pitfall has a unit test with the facts that show it.
 *
 * The rule for warn versus fail: fail only what stops the app from being
 * served as deployed (or the next deploy from working); what does not affect
 * the app (a pip conflict among system packages outside the requirements, the
 * production settings copied over the tracked settings.py) is a warning at most.
 */
import type { CheckResult } from '../../src/index.ts';
import type { ResolvedSiteOptions } from '../options.ts';
import { exceptionText, iniDirectives, traceLines, type FileFacts, type VassalInfo } from '../uwsgi.ts';
import type { AdminFacts, SiteFacts } from './facts.ts';

/** Below this much free space a deploy (pip, a release, collectstatic) is likely to fail. */
export const MIN_FREE_BYTES = 200 * 1024 * 1024;
/** Below this, a warning. */
export const LOW_FREE_BYTES = 1024 * 1024 * 1024;

/** Everything the verdicts are made from. */
export interface DoctorInput {
  site: ResolvedSiteOptions;
  /** The site's own Unix user (not the admin's). */
  siteUser: string;
  /** The vassal ini's text, or why it could not be read. */
  ini: { text: string } | { error: string };
  info?: VassalInfo;
  facts?: SiteFacts;
  /** The privileged pass; as root when `viaAdmin`, else run as the site user. */
  admin?: AdminFacts;
  /** The deployfile has an admin account for this site, and doctor went through it. */
  viaAdmin: boolean;
  /** The deploy command to name in fixes, e.g. `deploy run deploy -s shop`. */
  deployCommand: string;
}

const NEEDS_ADMIN = "needs an admin account to check: add admin: 'root' (or a user with sudo) to the site in the deployfile";

function owner(f: FileFacts | undefined): string {
  if (!f) return 'unknown';
  if (f.error) return f.error;
  return `${f.user}:${f.group} ${f.mode}`;
}

function pass(name: string, detail: string): CheckResult {
  return { name, status: 'pass', detail };
}
function warn(name: string, detail: string, fix: string): CheckResult {
  return { name, status: 'warn', detail, fix };
}
function fail(name: string, detail: string, fix: string): CheckResult {
  return { name, status: 'fail', detail, fix };
}

/** pip's names compare case-insensitively, with `-`, `_` and `.` alike. */
function normalize(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/**
 * Every check for one site, in the order the issue lists them: the vassal
 * ini, the app's load, packages, the socket, nginx, git, disk, what is served.
 *
 * @example
 * evaluate({ site, siteUser: 'shop', ini: { text }, info, facts, admin, viaAdmin: true, deployCommand: 'deploy run deploy -s shop' })
 * // => [{ name: 'vassal ini', status: 'pass', ... }, ...]
 */
export function evaluate(input: DoctorInput): CheckResult[] {
  const out: CheckResult[] = [];
  out.push(...iniChecks(input));
  if (!input.facts) return out;
  out.push(...loadChecks(input, input.facts));
  out.push(...packageChecks(input, input.facts));
  out.push(...socketChecks(input, input.facts));
  out.push(nginxCheck(input));
  out.push(...gitChecks(input, input.facts));
  out.push(diskCheck(input.facts));
  out.push(servedCheck(input, input.facts));
  return out;
}

function emperorCheck(site: ResolvedSiteOptions, facts: SiteFacts | undefined): CheckResult | undefined {
  if (!facts) return undefined;
  const dir = site.vassal.slice(0, site.vassal.lastIndexOf('/')) || '/';
  const e = facts.emperor;
  if (!e) {
    return warn(
      'emperor',
      `no running uWSGI emperor found watching ${dir} (judged as for tyrant mode, the blog post's setup)`,
      `start one (as root: uwsgi --emperor ${dir} --emperor-tyrant), or set the site's vassal var to an ini the running emperor watches`,
    );
  }
  return pass('emperor', `pid ${e.pid} (${e.binary}) watches ${e.watches}, ${e.tyrant ? 'in tyrant mode: a vassal runs as its ini\'s owner and group' : 'not in tyrant mode: a vassal runs as its uid=/gid= lines say'}`);
}

function iniChecks({ site, siteUser, ini, facts }: DoctorInput): CheckResult[] {
  const path = site.vassal;
  const chown = `as root: chown ${siteUser}:uwsgi ${path} && chmod 644 ${path}`;
  if ('error' in ini) {
    return [fail('vassal ini', `cannot read ${path} as ${siteUser}: ${ini.error}`, `as root: cp <emperor dir>/app.skel ${path}, then chown ${siteUser}:uwsgi ${path} (or set the site's vassal var to its ini)`)];
  }
  const out: CheckResult[] = [pass('vassal ini', `${path} exists and ${siteUser} can read it`)];
  const emperor = emperorCheck(site, facts);
  if (emperor) out.push(emperor);
  // An emperor not found is judged as the stack's usual one: a tyrant.
  const tyrant = facts?.emperor?.tyrant ?? true;
  const f = facts?.ini;
  if (f && !f.error && !tyrant) {
    out.push(pass('vassal ini owner', `${path} is ${owner(f)}: not tyrant mode, so its uid=/gid= lines, not its owner, decide whom the app runs as`));
  } else if (f && !f.error) {
    const described = `${path} is ${owner(f)}`;
    if (f.uid === 0 || f.gid === 0) {
      out.push(fail('vassal ini owner', `${described}: a tyrant-mode emperor refuses a vassal owned by uid or gid 0 ("invalid permissions"), so the app is not run`, chown));
    } else if (f.user !== siteUser) {
      out.push(fail('vassal ini owner', `${described}: tyrant mode runs the app as the ini's owner, ${f.user}, not ${siteUser}`, chown));
    } else if (f.group !== 'uwsgi') {
      out.push(fail('vassal ini owner', `${described}: tyrant mode runs the app with the ini's group, ${f.group}, which cannot create the socket in the uwsgi group's directory`, chown));
    } else out.push(pass('vassal ini owner', `${described}: the app runs as ${siteUser}, group uwsgi`));
    const mode = Number.parseInt(f.mode ?? '0', 8);
    if (mode & 0o002) out.push(fail('vassal ini mode', `${described}: anyone can write it, and so choose what runs as ${siteUser}`, `chmod 644 ${path}`));
    else if (mode & 0o020) out.push(warn('vassal ini mode', `${described}: every member of group ${f.group} can change what runs as ${siteUser}`, `chmod 644 ${path}`));
    else if (!(mode & 0o200)) out.push(warn('vassal ini mode', `${described}: ${siteUser} cannot touch it to reload the app`, `chmod 644 ${path}`));
    else out.push(pass('vassal ini mode', `${f.mode}`));
  }
  const directives = iniDirectives(ini.text);
  const privileged = directives.filter(([key]) => key === 'uid' || key === 'gid');
  if (!tyrant) {
    const uid = directives.find(([key]) => key === 'uid')?.[1];
    if (uid === undefined) out.push(fail('vassal ini uid/gid', `${path} has no uid = line, and the emperor is not in tyrant mode: the app runs as the emperor's user, root`, `add uid = ${siteUser} and gid = uwsgi to ${path}`));
    else if (uid !== siteUser) out.push(fail('vassal ini uid/gid', `${path} says uid = ${uid}: the app runs as ${uid}, not ${siteUser}`, `set uid = ${siteUser} in ${path}`));
    else out.push(pass('vassal ini uid/gid', `uid = ${uid} (not tyrant mode: the emperor drops to it)`));
  } else if (privileged.length > 0) {
    const lines = privileged.map(([key, value]) => `${key} = ${value}`).join(', ');
    out.push(
      fail('vassal ini uid/gid', `${path} sets ${lines}: a tyrant vassal already runs as the ini's owner and may not change its uid or gid, so it fails to start`, `remove the ${privileged.map(([key]) => `${key} =`).join(' and ')} line(s) from ${path}; ownership (${siteUser}:uwsgi) decides`),
    );
  } else out.push(pass('vassal ini uid/gid', 'no uid/gid lines (tyrant mode takes them from the owner)'));
  return out;
}

function loadChecks({ site, siteUser, info, ini }: DoctorInput, facts: SiteFacts): CheckResult[] {
  const out: CheckResult[] = [];
  const load = info?.load;
  if (facts.chdir) {
    if (facts.chdir.isDir) out.push(pass('chdir', `${facts.chdir.path} exists`));
    else out.push(fail('chdir', `the ini's chdir ${facts.chdir.path}: ${facts.chdir.error ?? 'missing'}`, `clone the site there as ${siteUser} (git clone <origin> ${facts.chdir.path}), or fix chdir = in ${site.vassal}`));
  } else out.push(warn('chdir', `${site.vassal} has no chdir: uWSGI starts the app in the emperor's directory`, `add chdir = ${site.codeDir} to ${site.vassal}`));

  const venv = facts.venv;
  if (!venv.exists) {
    out.push(fail('virtualenv', `${venv.python} does not exist`, `as ${siteUser}: python3 -m venv ${venv.path} && ${venv.path}/bin/pip install -r ${site.codeDir}/${site.requirements}`));
  } else if (venv.error) {
    out.push(fail('virtualenv', `${venv.python} does not run: ${venv.error.split('\n').at(-1)}`, `recreate it as ${siteUser}: mv ${venv.path} ${venv.path}.broken && python3 -m venv ${venv.path}, then deploy`));
  } else {
    const where = load?.home && load.home !== site.virtualenv ? ` (the ini's home; the deployfile says ${site.virtualenv})` : '';
    out.push(pass('virtualenv', `${venv.path}${where}: Python ${venv.version}${venv.systemSitePackages ? ', with system site packages' : ''}`));
  }

  out.push(pluginCheck(site.vassal, facts.uwsgi, 'text' in ini ? pluginsOf(ini.text) : []));

  if (!load) {
    out.push(fail('wsgi import', `${site.vassal} names no module, wsgi-file or mount: uWSGI loads no app ("no python application found")`, `add module = ${site.settings}.wsgi:application to ${site.vassal}`));
    return out;
  }
  const target = load.module ? `${load.module}:${load.callable ?? 'application'}` : `${load.file}:${load.callable ?? 'application'}`;
  const settings = load.env.find(([key]) => key === 'DJANGO_SETTINGS_MODULE')?.[1];
  const repro = facts.repro;
  if (!repro) {
    out.push(fail('wsgi import', `${target} not tried: the virtualenv's python is missing`, 'fix the virtualenv first'));
  } else if (repro.ok) {
    const production = facts.git.settingsIsProduction ? ` (${site.settings}/settings.py is settings_production.py, as deployed)` : '';
    out.push(pass('wsgi import', `${target} imports as ${siteUser} in ${facts.venv.path}${settings ? ` with DJANGO_SETTINGS_MODULE=${settings}` : ''}${production}`));
  } else if (repro.error) {
    out.push(fail('wsgi import', `could not try ${target} as ${siteUser}: ${repro.error}`, `run it by hand as ${siteUser}: ${repro.command}`));
  } else {
    const detail = [`${target} does not load as ${siteUser}: ${exceptionText(repro)}`, ...traceLines(repro).slice(0, -1), `reproduce: ${repro.command}`].join('\n');
    let fix: string;
    if (repro.stage === 'callable') {
      fix = repro.candidates?.length
        ? `the module defines ${repro.candidates.join(', ')}: point module = in ${site.vassal} at it (${load.module}:${repro.candidates[0]}), or name the callable back`
        : `point module = in ${site.vassal} at the module and callable of the WSGI app`;
    } else if (repro.type === 'ModuleNotFoundError' && load.module && new RegExp(`'${load.module.split('.')[0]}[.']`).test(`${repro.message}'`)) {
      fix = `the module ${load.module} is not under chdir ${load.chdir ?? '(none)'}: fix module = / chdir = in ${site.vassal}`;
    } else if (repro.type === 'ModuleNotFoundError' || repro.type === 'ImportError') {
      fix = `install what is missing into ${facts.venv.path} as ${siteUser} (add it to ${site.requirements} and deploy), or fix the import`;
    } else fix = `fix the code or settings at the frame above, commit, and deploy`;
    out.push(fail('wsgi import', detail, fix));
  }
  if (facts.git.settingsIsProduction === false) {
    out.push(warn('production settings', `${site.settings}/settings.py is not a copy of ${site.settings}/settings_production.py: the app runs with other settings than the deploy writes`, `deploy again (it copies them), or as ${siteUser}: cp ${site.codeDir}/${site.settings}/settings_production.py ${site.codeDir}/${site.settings}/settings.py`));
  }
  return out;
}

/** The plugins an ini loads (`plugin`/`plugins`, comma- or space-separated), e.g. `['python3']`. */
export function pluginsOf(iniText: string): string[] {
  return iniDirectives(iniText)
    .filter(([key]) => key === 'plugin' || key === 'plugins')
    .flatMap(([, value]) => value.split(/[\s,]+/))
    .filter(Boolean)
    .map((name) => name.replace(/_plugin\.so$/, '').replace(/^.*\//, ''));
}

function pluginCheck(vassal: string, uwsgi: SiteFacts['uwsgi'], plugins: string[]): CheckResult {
  const python = plugins.some((name) => /^python/.test(name));
  if (uwsgi.pythonBuiltin === undefined) {
    return python
      ? pass('uwsgi plugin', `plugin ${plugins.join(', ')} (the uWSGI binary was not found to check further)`)
      : warn('uwsgi plugin', `no plugin line, and no uWSGI binary found to tell whether it needs one${uwsgi.error ? ` (${uwsgi.error})` : ''}`, `if uWSGI is Debian's (uwsgi-core), add plugin = python3 to ${vassal}`);
  }
  if (uwsgi.pythonBuiltin) return pass('uwsgi plugin', `${uwsgi.binary} has Python built in${python ? `; plugin ${plugins.join(', ')}` : ''}`);
  if (python) return pass('uwsgi plugin', `${uwsgi.binary} is modular; the ini loads plugin ${plugins.filter((name) => /^python/.test(name)).join(', ')}`);
  return fail('uwsgi plugin', `${uwsgi.binary} has no Python built in and ${vassal} loads no python plugin: uWSGI does not know module = and serves no app`, `add plugin = python3 to ${vassal}`);
}

function packageChecks({ site, siteUser }: DoctorInput, facts: SiteFacts): CheckResult[] {
  const out: CheckResult[] = [];
  const required = new Set(facts.requirements.names.map(normalize));
  const pip = facts.pipCheck;
  if (pip) {
    if (pip.code === 0) out.push(pass('pip check', 'no broken requirements'));
    else if (pip.code === null) out.push(warn('pip check', `pip check did not finish: ${pip.error}`, `run it as ${siteUser}: ${facts.venv.python} -m pip check`));
    else {
      const problems = pip.out.split('\n').map((line) => line.trim()).filter((line) => /\b(requires|has requirement)\b/.test(line));
      const named = (line: string) => [...line.matchAll(/(?:^|requires |requirement |you have )([A-Za-z0-9][A-Za-z0-9._-]*)/g)].map((m) => normalize(m[1] as string));
      const ours = problems.filter((line) => named(line).some((name) => required.has(name)));
      if (ours.length > 0) {
        out.push(fail('pip check', `broken requirements of the app:\n${ours.slice(0, 5).join('\n')}`, `as ${siteUser}: ${facts.venv.path}/bin/pip install -r ${site.codeDir}/${site.requirements} (pin compatible versions there)`));
      } else if (problems.length > 0) {
        const where = facts.venv.systemSitePackages ? 'among system packages outside the app\'s requirements (the virtualenv sees the system site packages)' : "outside the app's requirements";
        out.push(warn('pip check', `${problems.length} conflict(s) ${where}, e.g. ${problems[0]}`, 'nothing the app needs; fix the packages named if you use them'));
      } else {
        out.push(warn('pip check', `pip check exited ${pip.code}: ${pip.out.trim().split('\n').at(-1) ?? ''}`, `run it as ${siteUser}: ${facts.venv.python} -m pip check`));
      }
    }
  }
  const req = facts.requirements;
  if (req.error && req.names.length === 0) {
    out.push(warn('packages visible', `cannot read ${req.file}: ${req.error}`, `commit a ${site.requirements} listing what the app imports`));
  } else if (req.missing.length > 0) {
    out.push(
      fail(
        'packages visible',
        `${req.missing.map((m) => m.name).join(', ')} from ${site.requirements} cannot be found by ${siteUser} in ${facts.venv.path}: ${req.missing[0]?.error}`,
        `as ${siteUser}: ${facts.venv.path}/bin/pip install -r ${site.codeDir}/${site.requirements} (not as root: uWSGI runs the app as ${siteUser})`,
      ),
    );
  }
  if (facts.unreadable.length > 0) {
    const first = facts.unreadable[0] as SiteFacts['unreadable'][number];
    out.push(
      fail(
        'packages visible',
        `${facts.unreadable.map((u) => `${u.path} (${u.user}:${u.group} ${u.mode})`).join(', ')}: not readable by ${siteUser}, whom uWSGI runs the app as (installed as root?)`,
        `as root: chown -R ${siteUser}: ${first.path} (or reinstall it as ${siteUser}, never with sudo pip)`,
      ),
    );
  }
  if (!req.error && req.missing.length === 0 && facts.unreadable.length === 0 && !facts.venv.error && facts.venv.exists) {
    out.push(pass('packages visible', `${req.names.length ? req.names.join(', ') : 'the virtualenv\'s packages'} visible to ${siteUser}`));
  }
  return out;
}

function writableBy(f: FileFacts, user: string, groups: readonly string[]): boolean {
  const mode = Number.parseInt(f.mode ?? '0', 8);
  if (f.user === user) return (mode & 0o200) !== 0;
  if (f.group && groups.includes(f.group)) return (mode & 0o020) !== 0;
  return (mode & 0o002) !== 0;
}

function socketChecks({ site, info, admin, viaAdmin }: DoctorInput, facts: SiteFacts): CheckResult[] {
  const sock = info?.socket;
  if (!sock) return [fail('socket', `${site.vassal} binds no socket: nginx has nothing to pass requests to`, `add socket = /run/uwsgi/%n.sock and chmod-socket = 660 to ${site.vassal}`)];
  if (sock.protocol !== 'uwsgi' || !sock.address.includes('/')) return [pass('socket', `${sock.protocol} socket ${sock.address} (not a unix socket: no permissions to check)`)];
  const out: CheckResult[] = [];
  const dir = facts.socketDir;
  const dirPath = sock.address.slice(0, sock.address.lastIndexOf('/')) || '/';
  const fixDir = `as root: chown root:uwsgi ${dirPath} && chmod 2775 ${dirPath}`;
  if (!dir || dir.error) out.push(fail('socket dir', `${dirPath}: ${dir?.error ?? 'unknown'}`, `as root: mkdir -p ${dirPath} && chown root:uwsgi ${dirPath} && chmod 2775 ${dirPath} (and make it at boot: /run is emptied)`));
  else {
    const mode = Number.parseInt(dir.mode ?? '0', 8);
    const wrong: string[] = [];
    if (dir.group !== 'uwsgi') wrong.push(`group ${dir.group}, not uwsgi`);
    if (!(mode & 0o2000)) wrong.push('no setgid bit (sockets would not get group uwsgi)');
    if (!(mode & 0o020)) wrong.push('not group-writable (vassals cannot create their socket)');
    if (wrong.length > 0) out.push(fail('socket dir', `${dirPath} is ${owner(dir)}: ${wrong.join(', ')}`, fixDir));
    else out.push(pass('socket dir', `${dirPath} is ${owner(dir)}`));
  }

  const file = facts.socketFile;
  const chmodFix = `set chmod-socket = 660 in ${site.vassal} and put nginx's user in group uwsgi (as root: usermod -aG uwsgi ${admin?.nginxUser ?? 'www-data'}), then restart nginx`;
  if (!file || file.error) {
    out.push(fail('socket', `${sock.address}: ${file?.error ?? 'missing'}: the vassal is not running, or binds elsewhere`, `read the emperor's log for ${site.vassal}; touch ${site.vassal} once the cause is fixed`));
    return out;
  }
  if (file.isSocket === false) {
    out.push(fail('socket', `${sock.address} is not a socket`, `remove it (as root) and touch ${site.vassal}`));
    return out;
  }
  const nginxUser = admin?.nginxUser ?? 'www-data';
  if (viaAdmin && admin?.connect) {
    if (admin.connect.ok) out.push(pass('socket', `${sock.address} (${owner(file)}) accepts a connection from nginx's user ${nginxUser}`));
    else out.push(fail('socket', `${sock.address} (${owner(file)}): nginx's user ${nginxUser} cannot connect: ${admin.connect.error}`, admin.connect.error?.startsWith('connection refused') ? `the vassal is not listening: read the emperor's log, then touch ${site.vassal}` : chmodFix));
    return out;
  }
  // No admin account: reason from the socket's owner and mode and the groups of nginx's user.
  const groups = admin?.nginxGroups;
  if (!groups) {
    out.push(warn('socket', `${sock.address} (${owner(file)}) exists; nginx's user ${nginxUser} was not found to check it can connect`, NEEDS_ADMIN));
  } else if (writableBy(file, nginxUser, groups)) {
    out.push(pass('socket', `${sock.address} (${owner(file)}) is writable by nginx's user ${nginxUser} (groups ${groups.join(', ')}), from its permissions`));
  } else {
    out.push(fail('socket', `${sock.address} (${owner(file)}) is not writable by nginx's user ${nginxUser} (groups ${groups.join(', ')}): nginx answers 502`, chmodFix));
  }
  return out;
}

/** The unix socket paths an nginx config's `uwsgi_pass` lines lead to, directly or through an upstream. */
export function uwsgiPassTargets(dump: string): string[] {
  const text = dump.replace(/#[^\n]*/g, '');
  const upstreams = new Map<string, string[]>();
  for (const m of text.matchAll(/upstream\s+([^\s{]+)\s*\{([^}]*)\}/g)) {
    upstreams.set(m[1] as string, [...(m[2] as string).matchAll(/server\s+([^\s;]+)/g)].map((s) => s[1] as string));
  }
  const unix = (target: string) => (target.startsWith('unix:') ? target.slice('unix:'.length).replace(/^\/+/, '/') : undefined);
  const out: string[] = [];
  for (const m of text.matchAll(/uwsgi_pass\s+([^\s;]+)\s*;/g)) {
    const target = (m[1] as string).replace(/^uwsgi:\/\//, '');
    const direct = unix(target);
    if (direct) out.push(direct);
    for (const server of upstreams.get(target) ?? []) {
      const path = unix(server);
      if (path) out.push(path);
    }
  }
  return out;
}

function nginxCheck({ site, info, admin, viaAdmin, siteUser }: DoctorInput): CheckResult {
  const sock = info?.socket;
  const name = 'nginx uwsgi_pass';
  if (!sock || !sock.address.includes('/')) return pass(name, 'no unix socket to look for');
  const fix = `in the site's nginx server block: location / { include uwsgi_params; uwsgi_pass unix:${sock.address}; }, then nginx -t && nginx -s reload`;
  if (!admin) return warn(name, 'nginx was not inspected', NEEDS_ADMIN);
  if (admin.nginx.length === 0) return fail(name, 'no running nginx found on the server', `start nginx with a server block that has uwsgi_pass unix:${sock.address}`);
  const readable = admin.nginx.filter((n) => n.dump !== undefined);
  if (readable.length === 0) {
    const why = admin.nginx.map((n) => n.error).filter(Boolean)[0] ?? 'unreadable';
    return warn(name, `nginx -T is not readable as ${viaAdmin ? 'the admin' : siteUser}: ${why}`, viaAdmin ? 'check that the admin account may run nginx -T through sudo' : NEEDS_ADMIN);
  }
  const found = readable.some((n) => uwsgiPassTargets(n.dump as string).includes(sock.address));
  if (found) return pass(name, `nginx passes requests to unix:${sock.address}`);
  return fail(name, `no uwsgi_pass to unix:${sock.address} in ${readable.length === 1 ? 'the running nginx' : `any of the ${readable.length} running nginx`}'s configuration (nginx -T): the app is not published`, fix);
}

function gitChecks({ site, siteUser, deployCommand }: DoctorInput, facts: SiteFacts): CheckResult[] {
  const g = facts.git;
  const dir = site.codeDir;
  if (!g.head) {
    const dubious = /dubious ownership/.test(g.error ?? '');
    return [
      fail(
        'git',
        `${dir} is not a git checkout ${siteUser} can read: ${g.error?.split('\n')[0] ?? 'unknown'}`,
        dubious ? `as ${siteUser}: git config --global --add safe.directory ${dir} (or chown it to ${siteUser})` : `clone the site as ${siteUser}: git clone <origin> ${dir}`,
      ),
    ];
  }
  const out: CheckResult[] = [];
  if (!g.origin) out.push(fail('git origin', `${dir} has no remote origin`, `as ${siteUser}: git -C ${dir} remote add origin <url>`));
  else if (g.reach?.code === 0) out.push(pass('git origin', `${g.origin} reachable as ${siteUser}`));
  else out.push(fail('git origin', `${g.origin} is not reachable as ${siteUser}: ${(g.reach?.error ?? g.reach?.out ?? '').trim().split('\n').at(-1)}`, `check ${siteUser}'s deploy key or agent forwarding and the network: git -C ${dir} ls-remote origin`));

  const generated = `${site.settings}/settings.py`;
  const edits = (g.status ?? []).filter((line) => line.slice(3) !== generated);
  const settingsNote = (g.status ?? []).some((line) => line.slice(3) === generated) ? ` (${generated} differs from the repository: the production settings, as the deploy writes them)` : '';
  if (g.status === undefined || g.status === null) out.push(warn('git work tree', `git status failed: ${g.error ?? ''}`, `as ${siteUser}: git -C ${dir} status`));
  else if (edits.length > 0) {
    const shown = edits.slice(0, 5).join(', ') + (edits.length > 5 ? `, and ${edits.length - 5} more` : '');
    out.push(fail('git work tree', `${dir} has edits made on the server, which the next deploy refuses: ${shown}`, `commit them to the repository and deploy that, or discard them: git -C ${dir} checkout -- <file>`));
  } else out.push(pass('git work tree', `clean${settingsNote}`));

  const head = g.head.slice(0, 7);
  const deployed = facts.deployed;
  if (!deployed?.revision) {
    out.push(warn('git revision', `HEAD ${head}${g.branch ? ` (${g.branch})` : ''}; no successful deploy recorded in ~/.deployfile/history.jsonl to compare with`, `deploy it: ${deployCommand}`));
  } else if (deployed.revision === g.head) {
    out.push(pass('git revision', `HEAD ${head} is the last deployed revision (${deployed.time ?? '?'}, by ${deployed.operator ?? '?'})`));
  } else {
    out.push(
      fail(
        'git revision',
        `HEAD ${head} is not the last deployed revision ${deployed.revision.slice(0, 7)} (${deployed.time ?? '?'}, by ${deployed.operator ?? '?'}): someone changed the checkout outside a deploy`,
        `deploy again (${deployCommand}), or put it back: git -C ${dir} checkout ${g.branch ?? deployed.revision} && git -C ${dir} reset --hard ${deployed.revision}`,
      ),
    );
  }
  return out;
}

function mib(bytes: number): string {
  return bytes >= 10 * 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(0)} GiB` : bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(bytes / 1024 ** 2)} MiB`;
}

function diskCheck(facts: SiteFacts): CheckResult {
  const name = 'disk space';
  if (facts.disk.length === 0) return warn(name, 'could not read the free space', 'df -h ~');
  const least = [...facts.disk].sort((a, b) => a.freeBytes - b.freeBytes)[0] as SiteFacts['disk'][number];
  const detail = facts.disk.map((d) => `${mib(d.freeBytes)} free of ${mib(d.totalBytes)} at ${d.path}`).join('; ');
  if (least.freeBytes < MIN_FREE_BYTES) return fail(name, detail, `free space on the filesystem of ${least.path}: a deploy needs room for pip and static files`);
  if (least.freeBytes < LOW_FREE_BYTES || least.freeBytes < least.totalBytes * 0.05) return warn(name, detail, `free space on the filesystem of ${least.path} before it runs out`);
  return pass(name, detail);
}

function clock(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

function servedCheck({ site, siteUser }: DoctorInput, facts: SiteFacts): CheckResult {
  const name = 'serving';
  const revision = facts.deployed?.revision ? `${facts.deployed.revision.slice(0, 7)} (last deploy, ${facts.deployed.time})` : facts.git.head ? `${facts.git.head.slice(0, 7)} (the checkout's HEAD; no deploy recorded)` : 'unknown revision';
  if (facts.served.length === 0) {
    return fail(name, `no uWSGI process of ${facts.ini.user ?? siteUser} for ${site.vassal}: the vassal is not running`, `read the emperor's log for ${site.vassal}, fix what it says, then touch ${site.vassal}`);
  }
  const master = facts.served[0] as SiteFacts['served'][number];
  const newest = facts.served[facts.served.length - 1] as SiteFacts['served'][number];
  const since = `uWSGI up since ${clock(master.startedAt)} (pid ${master.pid}), ${facts.served.length} process${facts.served.length === 1 ? '' : 'es'}, newest from ${clock(newest.startedAt)}`;
  const deployedAt = facts.deployed?.time ? Date.parse(facts.deployed.time) / 1000 : undefined;
  if (deployedAt !== undefined && newest.startedAt < deployedAt) {
    return warn(name, `${revision}; ${since}: no process started after the last deploy, so the app may still run older code`, `touch ${site.vassal} to reload it`);
  }
  return pass(name, `${revision}; ${since}`);
}

