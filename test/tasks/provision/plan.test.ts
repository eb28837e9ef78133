import { describe, expect, it } from 'vitest';
import type { Facts, PathFact } from '../../../tasks/provision/inspect.ts';
import { provisionSettings, defaultNginxTemplate, type ProvisionOptions } from '../../../tasks/provision/options.ts';
import { planSite, renderPlan, socketDirOf, type Plan, type Wanted } from '../../../tasks/provision/plan.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKeyBlob op@laptop';
const SKEL = '[uwsgi]\nchdir = /home/%n/Sites/%n\nsocket = /run/uwsgi/%n.sock\n';
const site = (vars: Record<string, unknown> = {}) => ({ name: 'shop', user: 'root', host: 'web1', port: 22, vars: { siteUser: 'shop', ...vars } });
const settingsOf = (options: ProvisionOptions = {}, vars: Record<string, unknown> = {}) =>
  provisionSettings(site(vars), options, { origin: 'git@git.example.com:shop.git', branch: 'main', keys: [KEY] });

const missing = (path: string): PathFact => ({ path, kind: 'missing' });
const file = (path: string, content: string | undefined, owner = 'shop', group = 'shop', mode = 0o644): PathFact => ({ path, kind: 'file', owner, group, mode, content });
const dir = (path: string, owner = 'shop', group = 'shop', mode = 0o755): PathFact => ({ path, kind: 'dir', owner, group, mode });

/** A server where nothing of the site exists yet (the emperor and its skeleton do). */
function nothing(): Facts {
  return {
    user: null,
    groups: { uwsgi: 998 },
    safeDirectories: [],
    paths: {
      authorizedKeys: missing('/home/shop/.ssh/authorized_keys'),
      codeDir: missing('/home/shop/Sites/shop'),
      git: missing('/home/shop/Sites/shop/.git'),
      virtualenv: missing('/home/shop/virtualenvs/shop'),
      python: missing('/home/shop/virtualenvs/shop/bin/python'),
      requirements: missing('/home/shop/Sites/shop/REQUIREMENTS'),
      installed: missing('/home/shop/virtualenvs/shop/.deployfile/requirements.installed'),
      vassal: missing('/etc/uwsgi/emperor.d/shop.ini'),
      skeleton: file('/etc/uwsgi/emperor.d/app.skel', SKEL, 'root', 'root'),
      socketDir: dir('/run/uwsgi', 'root', 'uwsgi', 0o2775),
      nginxFile: missing('/etc/nginx/sites-available/shop'),
      nginxEnabled: missing('/etc/nginx/sites-enabled/shop'),
    },
  };
}

/** `vassal` null: no skeleton on the server and no template. */
function wantedFor(settings = settingsOf(), text: string | null = SKEL): Wanted {
  const vassal = text ?? undefined;
  const vars = { site: 'shop', user: 'shop', codeDir: settings.codeDir, virtualenv: settings.virtualenv, settings: 'shop', socket: '/run/uwsgi/shop.sock', serverName: settings.serverName, listen: settings.listen, vars: {} };
  return { settings, vassal, vassalSource: settings.vassalSkeleton, nginx: defaultNginxTemplate(vars), socketDir: socketDirOf(settings, vassal) };
}

/** The server once the plan for nothing() was applied. */
function provisioned(wanted = wantedFor()): Facts {
  const facts = nothing();
  facts.user = { uid: 1001, gid: 1001, home: '/home/shop', shell: '/bin/bash', password: 'star' };
  Object.assign(facts.paths, {
    authorizedKeys: file('/home/shop/.ssh/authorized_keys', `${KEY}\n`, 'shop', 'shop', 0o600),
    codeDir: dir('/home/shop/Sites/shop'),
    git: dir('/home/shop/Sites/shop/.git'),
    virtualenv: dir('/home/shop/virtualenvs/shop'),
    python: { path: '/home/shop/virtualenvs/shop/bin/python', kind: 'link', target: 'python3' },
    requirements: file('/home/shop/Sites/shop/REQUIREMENTS', 'Django\n'),
    installed: file('/home/shop/virtualenvs/shop/.deployfile/requirements.installed', 'Django\n'),
    vassal: file('/etc/uwsgi/emperor.d/shop.ini', wanted.vassal, 'shop', 'uwsgi'),
    nginxFile: file('/etc/nginx/sites-available/shop', wanted.nginx, 'root', 'root'),
    nginxEnabled: { path: '/etc/nginx/sites-enabled/shop', kind: 'link', target: '/etc/nginx/sites-available/shop' },
  });
  return facts;
}

const kinds = (plan: Plan) => plan.steps.map((step) => step.kind);

describe('the provision plan', () => {
  it('from nothing: every step, in order, with the diffs of the files it writes', () => {
    const plan = planSite(nothing(), wantedFor());
    expect(plan.problems).toEqual([]);
    expect(kinds(plan)).toEqual(['createUser', 'authorizedKeys', 'clone', 'virtualenv', 'requirements', 'vassal', 'nginx']);
    expect(plan.exists).toEqual(['socket directory /run/uwsgi (root:uwsgi 2775)']);
    const text = renderPlan(plan, 'shop on web1, through root');
    expect(text).toContain("will: create user shop and its group shop (home /home/shop, shell /bin/bash, password '*': key login only)");
    expect(text).toContain('will: clone git@git.example.com:shop.git (main) into /home/shop/Sites/shop as shop');
    expect(text).toContain('      +++ /etc/uwsgi/emperor.d/shop.ini (new)\n      @@ -0,0 +1,3 @@\n      +[uwsgi]\n      +chdir = /home/%n/Sites/%n');
    expect(text).toContain('will: write the nginx server block /etc/nginx/sites-available/shop, link it from /etc/nginx/sites-enabled/shop;');
    expect(text).toContain('      +        uwsgi_pass unix:/run/uwsgi/shop.sock;');
  });

  it('on a provisioned site: nothing to change, and what exists is listed', () => {
    const plan = planSite(provisioned(), wantedFor());
    expect(plan.steps).toEqual([]);
    expect(plan.problems).toEqual([]);
    expect(plan.exists).toContain('vassal /etc/uwsgi/emperor.d/shop.ini (shop:uwsgi 0644)');
    expect(renderPlan(plan, 'x')).toMatch(/\n {2}nothing to change$/);
  });

  it('creates the user in a group of its name that exists already (useradd --user-group would refuse)', () => {
    const facts = nothing();
    facts.groups.shop = 1005;
    expect(planSite(facts, wantedFor()).steps[0]).toMatchObject({ kind: 'createUser', groupExists: true, title: expect.stringContaining('create user shop in the existing group shop') });
    expect(planSite(nothing(), wantedFor()).steps[0]).toMatchObject({ kind: 'createUser', groupExists: false });
  });

  it("a '!' password field (useradd's default) is set to '*': sshd without PAM refuses it even with a key", () => {
    const facts = provisioned();
    facts.user!.password = 'locked';
    expect(kinds(planSite(facts, wantedFor()))).toEqual(['unlockPassword']);
  });

  it('adds only the keys missing (a key with another comment is there already), after a last line with no newline', () => {
    const other = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQOtherKey other@host';
    const facts = provisioned();
    facts.paths.authorizedKeys!.content = `${KEY}\n${other}`;
    expect(planSite(facts, wantedFor(settingsOf({ authorizedKeys: [KEY.replace('op@laptop', 'renamed'), other] }))).steps).toEqual([]);
    facts.paths.authorizedKeys!.content = other;
    const adding = planSite(facts, wantedFor());
    expect(adding.steps[0]).toMatchObject({ kind: 'authorizedKeys', add: [KEY] });
    expect(adding.steps[0]).toHaveProperty('diff', expect.stringContaining(`@@ -1,1 +1,2 @@\n ${other}\n+${KEY}`));
  });

  it("trusts (safe.directory) an origin on the server owned by another user, once", () => {
    const settings = settingsOf({ origin: '/srv/git/shop.git' });
    const facts = nothing();
    facts.paths.origin = dir('/srv/git/shop.git', 'root', 'root');
    expect(kinds(planSite(facts, wantedFor(settings)))).toContain('safeDirectory');
    facts.safeDirectories = ['/srv/git/shop.git'];
    expect(kinds(planSite(facts, wantedFor(settings)))).not.toContain('safeDirectory');
    facts.paths.origin = missing('/srv/git/shop.git');
    expect(planSite(facts, wantedFor(settings)).problems).toEqual(['the origin /srv/git/shop.git does not exist on the server']);
  });

  it("clones through the admin's forwarded agent as root when told, after the git host's keys, with no safe.directory", () => {
    const hostKey = '[git.example.com]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost';
    const settings = settingsOf({ cloneAs: 'admin', gitKnownHosts: [hostKey], origin: '/srv/git/shop.git' });
    const facts = nothing();
    facts.paths.origin = dir('/srv/git/shop.git', 'root', 'root');
    facts.paths.knownHosts = missing('/home/shop/.ssh/known_hosts');
    const plan = planSite(facts, wantedFor(settings));
    expect(kinds(plan)).toEqual(['createUser', 'authorizedKeys', 'knownHosts', 'clone', 'virtualenv', 'requirements', 'vassal', 'nginx']);
    expect(plan.steps[3]).toMatchObject({ as: 'admin', knownHostsFile: '/home/shop/.ssh/known_hosts', title: "clone /srv/git/shop.git (main) into /home/shop/Sites/shop as root through the admin's forwarded agent, then chown -R shop" });
    facts.paths.knownHosts = file('/home/shop/.ssh/known_hosts', `${hostKey}\n`, 'shop', 'shop', 0o600);
    expect(kinds(planSite(facts, wantedFor(settings)))).not.toContain('knownHosts');
  });

  it('a vassal owned by root is only chowned (no rewrite, no diff: the emperor sees no new text)', () => {
    const facts = provisioned();
    facts.paths.vassal = file('/etc/uwsgi/emperor.d/shop.ini', SKEL, 'root', 'root');
    const plan = planSite(facts, wantedFor());
    expect(plan.steps).toHaveLength(1);
    expect(plan.steps[0]).toMatchObject({ kind: 'vassal', write: false });
    expect(plan.steps[0]).not.toHaveProperty('diff');
    expect(plan.steps[0]!.title).toContain('(is root:root 0644; tyrant mode runs it as its owner and refuses uid or gid 0)');
  });

  it('a vassal whose text differs is rewritten, with the diff', () => {
    const facts = provisioned();
    facts.paths.vassal = file('/etc/uwsgi/emperor.d/shop.ini', '[uwsgi]\nchdir = /somewhere/else\nsocket = /run/uwsgi/%n.sock\n', 'shop', 'uwsgi');
    const plan = planSite(facts, wantedFor());
    expect(plan.steps[0]).toHaveProperty('diff', expect.stringContaining(' [uwsgi]\n-chdir = /somewhere/else\n+chdir = /home/%n/Sites/%n\n socket'));
  });

  it('fixes a socket directory without the group, setgid or group write; makes a missing one', () => {
    const facts = provisioned();
    facts.paths.socketDir = dir('/run/uwsgi', 'root', 'root', 0o755);
    expect(planSite(facts, wantedFor()).steps[0]).toMatchObject({ kind: 'socketDir', create: false, group: 'uwsgi' });
    facts.paths.socketDir = missing('/run/uwsgi');
    expect(planSite(facts, wantedFor()).steps[0]).toMatchObject({ kind: 'socketDir', create: true });
  });

  it('an nginx block in place but not enabled only gets its link', () => {
    const facts = provisioned();
    facts.paths.nginxEnabled = missing('/etc/nginx/sites-enabled/shop');
    expect(planSite(facts, wantedFor()).steps).toEqual([expect.objectContaining({ kind: 'nginx', writeFile: false, link: '/etc/nginx/sites-enabled/shop', diff: undefined })]);
  });

  it('stops before any change on what it must not guess about, saying what to do', () => {
    const facts = nothing();
    facts.groups.uwsgi = null;
    facts.paths.codeDir = dir('/home/shop/Sites/shop');
    facts.paths.virtualenv = dir('/home/shop/virtualenvs/shop');
    facts.paths.nginxEnabled = { path: '/etc/nginx/sites-enabled/shop', kind: 'link', target: '/etc/nginx/sites-available/default' };
    const plan = planSite(facts, wantedFor(settingsOf({ authorizedKeys: [] }), null));
    expect(plan.problems).toEqual([
      'no public key to authorize for shop: set authorizedKeys, or identityFile with its .pub beside it',
      '/home/shop/Sites/shop exists but is not a git checkout: move it away, or set codeDir',
      '/home/shop/virtualenvs/shop exists but has no bin/python: remove it (a virtualenv cannot be moved or repaired in place) or set virtualenv',
      'no group uwsgi on the server: set up the uWSGI emperor first (groupadd --system uwsgi), or set uwsgiGroup',
      "no vassal skeleton at /etc/uwsgi/emperor.d/app.skel on the server: copy the emperor's app.skel there, or set vassalSkeleton or vassalTemplate",
      '/etc/nginx/sites-enabled/shop exists and is not a link to /etc/nginx/sites-available/shop (it links to /etc/nginx/sites-available/default): move it away',
    ]);
  });

  it("the socket directory is the vassal's socket's (with %n), or the option", () => {
    expect(socketDirOf(settingsOf(), SKEL)).toBe('/run/uwsgi');
    expect(socketDirOf(settingsOf(), '[uwsgi]\nsocket = 127.0.0.1:3031\n')).toBeUndefined();
    expect(socketDirOf(settingsOf({ socketDir: '/srv/sockets' }), SKEL)).toBe('/srv/sockets');
  });
});
