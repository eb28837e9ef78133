import { describe, expect, it } from 'vitest';
import { evaluate, pluginsOf, uwsgiPassTargets, type DoctorInput } from '../../../tasks/doctor/checks.ts';
import type { AdminFacts, SiteFacts } from '../../../tasks/doctor/facts.ts';
import { resolveSite } from '../../../tasks/options.ts';
import { parseVassalIni } from '../../../tasks/uwsgi.ts';

// The verdicts from facts, without a server: each pitfall is a change to
// the facts of a healthy site, and the check that names it.

const VASSAL = '/etc/uwsgi/emperor.d/shop.ini';
const SOCKET = '/run/uwsgi/shop.sock';
const INI = `[uwsgi]
plugin = python3
chdir = /home/shop/Sites/shop
virtualenv = /home/shop/virtualenvs/shop
module = shop.wsgi:application
socket = ${SOCKET}
chmod-socket = 660
env = DJANGO_SETTINGS_MODULE=shop.settings
`;
const HEAD = 'b03131d4a8f65a0baffd4b1b4c4b29fcc92b02d1';

function healthyFacts(): SiteFacts {
  return {
    user: { name: 'shop', uid: 1001, gid: 1001, groups: ['shop'] },
    ini: { path: VASSAL, uid: 1001, gid: 995, user: 'shop', group: 'uwsgi', mode: '0644' },
    chdir: { path: '/home/shop/Sites/shop', isDir: true },
    venv: { path: '/home/shop/virtualenvs/shop', python: '/home/shop/virtualenvs/shop/bin/python', exists: true, version: '3.11.2', systemSitePackages: true, sitePackages: '/home/shop/virtualenvs/shop/lib/python3.11/site-packages' },
    emperor: { pid: 7, binary: '/usr/bin/uwsgi', watches: '/etc/uwsgi/emperor.d', tyrant: true },
    uwsgi: { binary: '/usr/bin/uwsgi', pythonBuiltin: false },
    repro: { ok: true, loaded: true, command: "cd /home/shop/Sites/shop; python -c 'import shop.wsgi'" },
    pipCheck: { code: 0, out: 'No broken requirements found.\n' },
    requirements: { file: '/home/shop/Sites/shop/REQUIREMENTS', names: ['Django'], missing: [] },
    unreadable: [],
    socketDir: { path: '/run/uwsgi', uid: 0, gid: 995, user: 'root', group: 'uwsgi', mode: '2775' },
    socketFile: { path: SOCKET, uid: 1001, gid: 995, user: 'shop', group: 'uwsgi', mode: '0660', isSocket: true },
    git: { head: HEAD, branch: 'main', status: [' M shop/settings.py'], origin: 'git@example.com:shop.git', reach: { code: 0, out: '' }, settingsIsProduction: true },
    deployed: { time: '2026-12-01T10:00:00.000Z', revision: HEAD, operator: 'op@laptop' },
    disk: [{ path: '/home/shop', freeBytes: 20 * 1024 ** 3, totalBytes: 100 * 1024 ** 3 }],
    served: [{ pid: 100, startedAt: Date.parse('2026-12-01T09:00:00Z') / 1000 }, { pid: 101, startedAt: Date.parse('2026-12-01T10:00:05Z') / 1000 }],
  };
}

function healthyAdmin(): AdminFacts {
  return {
    uid: 0,
    nginx: [{ pid: 50, command: '/usr/sbin/nginx -T', dump: `# configuration file /etc/nginx/nginx.conf:\nuser www-data;\nserver { location / { include uwsgi_params; uwsgi_pass unix://${SOCKET}; } }\n` }],
    nginxUser: 'www-data',
    nginxUserKnown: true,
    nginxGroups: ['www-data', 'uwsgi'],
    connect: { ok: true, user: 'www-data' },
  };
}

function input(change: { ini?: string; facts?: (f: SiteFacts) => void; admin?: (a: AdminFacts) => void; viaAdmin?: boolean } = {}): DoctorInput {
  const text = change.ini ?? INI;
  const facts = healthyFacts();
  change.facts?.(facts);
  const admin = healthyAdmin();
  change.admin?.(admin);
  return {
    site: resolveSite({ name: 'shop', user: 'shop', host: 'web1', port: 22, vars: {} }),
    siteUser: 'shop',
    ini: { text },
    info: parseVassalIni(text, VASSAL),
    facts,
    admin,
    viaAdmin: change.viaAdmin ?? true,
    deployCommand: 'deploy run deploy -s shop',
  };
}

function check(results: ReturnType<typeof evaluate>, name: string) {
  const found = results.filter((r) => r.name === name);
  expect(found.length, `no check named ${name}: ${results.map((r) => r.name).join(', ')}`).toBeGreaterThan(0);
  return found.find((r) => r.status !== 'pass') ?? (found[0] as (typeof found)[number]);
}

describe('doctor verdicts', () => {
  it('a healthy site passes every check, the production settings.py over the tracked one included', () => {
    const results = evaluate(input());
    expect(results.filter((r) => r.status !== 'pass')).toEqual([]);
    expect(check(results, 'git work tree').detail).toContain('the production settings, as the deploy writes them');
    expect(check(results, 'wsgi import').detail).toContain('with DJANGO_SETTINGS_MODULE=shop.settings');
  });

  it('an ini owned by root fails, with the chown that fixes it', () => {
    const c = check(evaluate(input({ facts: (f) => Object.assign(f.ini, { uid: 0, gid: 0, user: 'root', group: 'root' }) })), 'vassal ini owner');
    expect(c).toMatchObject({ status: 'fail', fix: `as root: chown shop:uwsgi ${VASSAL} && chmod 644 ${VASSAL}` });
    expect(c.detail).toContain('uid or gid 0');
  });

  it('an ini of another group fails: the vassal could not create its socket', () => {
    const c = check(evaluate(input({ facts: (f) => Object.assign(f.ini, { gid: 1001, group: 'shop' }) })), 'vassal ini owner');
    expect(c.status).toBe('fail');
    expect(c.detail).toContain('group, shop');
  });

  it('a world-writable ini fails, a group-writable one warns', () => {
    expect(check(evaluate(input({ facts: (f) => (f.ini.mode = '0666') })), 'vassal ini mode').status).toBe('fail');
    expect(check(evaluate(input({ facts: (f) => (f.ini.mode = '0664') })), 'vassal ini mode').status).toBe('warn');
  });

  it('uid= or gid= inside a tyrant vassal fails, naming the lines to remove', () => {
    const c = check(evaluate(input({ ini: `${INI}uid = shop\ngid = uwsgi\n` })), 'vassal ini uid/gid');
    expect(c.status).toBe('fail');
    expect(c.detail).toContain('sets uid = shop, gid = uwsgi');
    expect(c.fix).toContain('remove the uid = and gid = line(s)');
  });

  it('no emperor watching the ini warns; a non-tyrant emperor wants uid= and accepts a root-owned ini', () => {
    expect(check(evaluate(input({ facts: (f) => delete f.emperor })), 'emperor')).toMatchObject({ status: 'warn' });
    const rootOwned = (f: SiteFacts) => {
      (f.emperor as { tyrant: boolean }).tyrant = false;
      Object.assign(f.ini, { uid: 0, gid: 0, user: 'root', group: 'root' });
    };
    const withUid = evaluate(input({ ini: `${INI}uid = shop\ngid = uwsgi\n`, facts: rootOwned }));
    expect(withUid.filter((r) => r.status !== 'pass')).toEqual([]);
    expect(check(withUid, 'emperor').detail).toContain('not in tyrant mode');
    expect(check(evaluate(input({ facts: rootOwned })), 'vassal ini uid/gid')).toMatchObject({ status: 'fail', fix: `add uid = shop and gid = uwsgi to ${VASSAL}` });
  });

  it('a modular uWSGI without a python plugin line fails; with Python built in it passes', () => {
    const noPlugin = INI.replace('plugin = python3\n', '');
    expect(check(evaluate(input({ ini: noPlugin })), 'uwsgi plugin')).toMatchObject({ status: 'fail', fix: `add plugin = python3 to ${VASSAL}` });
    expect(check(evaluate(input({ ini: noPlugin, facts: (f) => (f.uwsgi.pythonBuiltin = true) })), 'uwsgi plugin').status).toBe('pass');
    expect(pluginsOf('[uwsgi]\nplugins = python3,logfile\nplugin = /usr/lib/uwsgi/plugins/http_plugin.so\n')).toEqual(['python3', 'logfile', 'http']);
  });

  it('a missing chdir or a virtualenv whose python does not run fails', () => {
    expect(check(evaluate(input({ facts: (f) => (f.chdir = { path: '/home/shop/Sites/shop', isDir: false, error: 'No such file or directory' }) })), 'chdir').status).toBe('fail');
    const venv = check(evaluate(input({ facts: (f) => (f.venv.error = 'error while loading shared libraries: libpython3.9.so') })), 'virtualenv');
    expect(venv.status).toBe('fail');
    expect(venv.fix).toContain('python3 -m venv');
  });

  it('a wrong callable fails with what the module defines', () => {
    const c = check(
      evaluate(
        input({
          facts: (f) =>
            (f.repro = { ok: false, stage: 'callable', type: 'AttributeError', message: "module 'shop.wsgi' has no attribute 'application'", candidates: ['app'], frames: [], command: 'python -c ...' }),
        }),
      ),
      'wsgi import',
    );
    expect(c.status).toBe('fail');
    expect(c.detail).toContain("AttributeError: module 'shop.wsgi' has no attribute 'application'");
    expect(c.fix).toContain('(shop.wsgi:app)');
  });

  it('an ImportError fails with the traceback frame, and the fix installs what is missing', () => {
    const c = check(
      evaluate(
        input({
          facts: (f) =>
            (f.repro = {
              ok: false,
              stage: 'import',
              type: 'ModuleNotFoundError',
              message: "No module named 'flask'",
              frames: [{ file: '/home/shop/Sites/shop/shop/wsgi.py', line: 1, name: '<module>', code: 'import flask' }],
              command: 'python -c ...',
            }),
        }),
      ),
      'wsgi import',
    );
    expect(c.detail.split('\n')).toEqual([
      "shop.wsgi:application does not load as shop: ModuleNotFoundError: No module named 'flask'",
      '  File "/home/shop/Sites/shop/shop/wsgi.py", line 1, in <module>',
      '    import flask',
      'reproduce: python -c ...',
    ]);
    expect(c.fix).toContain('install what is missing into /home/shop/virtualenvs/shop as shop');
  });

  it('a module the ini names that is not under chdir is a module/chdir fix, not an install', () => {
    const c = check(evaluate(input({ facts: (f) => (f.repro = { ok: false, stage: 'import', type: 'ModuleNotFoundError', message: "No module named 'shop'", frames: [], command: '' }) })), 'wsgi import');
    expect(c.fix).toContain('is not under chdir');
  });

  it('pip conflicts among system packages outside the requirements warn; those of a requirement fail', () => {
    const system = 'pygobject 3.42.2 requires pycairo, which is not installed.\n';
    expect(check(evaluate(input({ facts: (f) => (f.pipCheck = { code: 1, out: system }) })), 'pip check')).toMatchObject({ status: 'warn' });
    const ours = 'django-extensions 3.2.3 has requirement Django>=4.2, but you have django 3.2.19.\n';
    expect(check(evaluate(input({ facts: (f) => (f.pipCheck = { code: 1, out: ours }) })), 'pip check').status).toBe('fail');
  });

  it('a requirement the site user cannot find, or root-only files in site-packages, fail', () => {
    const missing = check(evaluate(input({ facts: (f) => (f.requirements.missing = [{ name: 'Django', error: 'PackageNotFoundError: No package metadata was found for Django' }]) })), 'packages visible');
    expect(missing.status).toBe('fail');
    expect(missing.fix).toContain('not as root');
    const closed = '/home/shop/virtualenvs/shop/lib/python3.11/site-packages/flask';
    const unreadable = check(evaluate(input({ facts: (f) => (f.unreadable = [{ path: closed, user: 'root', group: 'root', mode: '0700' }]) })), 'packages visible');
    expect(unreadable).toMatchObject({ status: 'fail', fix: `as root: chown -R shop: ${closed} (or reinstall it as shop, never with sudo pip)` });
  });

  it('a socket directory without group uwsgi, setgid or group-write fails, naming each', () => {
    const c = check(evaluate(input({ facts: (f) => Object.assign(f.socketDir as object, { gid: 0, group: 'root', mode: '0755' }) })), 'socket dir');
    expect(c.detail).toBe('/run/uwsgi is root:root 0755: group root, not uwsgi, no setgid bit (sockets would not get group uwsgi), not group-writable (vassals cannot create their socket)');
    expect(c.fix).toBe('as root: chown root:uwsgi /run/uwsgi && chmod 2775 /run/uwsgi');
  });

  it("a socket nginx's user cannot connect to fails: tried as that user through the admin, reasoned from permissions without one", () => {
    expect(check(evaluate(input({ admin: (a) => (a.connect = { ok: false, error: 'permission denied' }) })), 'socket').fix).toContain('chmod-socket = 660');
    const plain = (mode: string, groups: string[]) =>
      check(evaluate(input({ viaAdmin: false, facts: (f) => ((f.socketFile as { mode: string }).mode = mode), admin: (a) => ((a.uid = 1001), delete a.connect, (a.nginxGroups = groups)) })), 'socket');
    expect(plain('0660', ['www-data', 'uwsgi']).status).toBe('pass');
    expect(plain('0660', ['www-data']).status).toBe('fail');
    expect(plain('0666', ['www-data']).status).toBe('pass');
  });

  it('nginx without a uwsgi_pass to the socket fails; an unreadable nginx -T without an admin warns', () => {
    const none = check(evaluate(input({ admin: (a) => ((a.nginx[0] as { dump: string }).dump = '# configuration file x:\nserver { uwsgi_pass unix:/run/uwsgi/other.sock; }') })), 'nginx uwsgi_pass');
    expect(none).toMatchObject({ status: 'fail' });
    expect(none.fix).toContain(`uwsgi_pass unix:${SOCKET};`);
    const unreadable = check(evaluate(input({ viaAdmin: false, admin: (a) => (a.nginx = [{ pid: 1, command: 'nginx -T', error: 'permission denied' }]) })), 'nginx uwsgi_pass');
    expect(unreadable.status).toBe('warn');
    expect(unreadable.fix).toContain("add admin: 'root'");
  });

  it('uwsgi_pass targets: direct, unix:// and through an upstream; comments ignored', () => {
    const dump = `upstream shop { server unix:/run/uwsgi/shop.sock; }\n# uwsgi_pass unix:/commented.sock;\nlocation / { uwsgi_pass shop; }\nlocation /b { uwsgi_pass unix:///run/uwsgi/b.sock; }`;
    expect(uwsgiPassTargets(dump).sort()).toEqual(['/run/uwsgi/b.sock', '/run/uwsgi/shop.sock']);
  });

  it('edits made on the server and a HEAD other than the last deploy fail; no deploy recorded warns', () => {
    const dirty = check(evaluate(input({ facts: (f) => (f.git.status = [' M shop/settings.py', ' M shop/views.py']) })), 'git work tree');
    expect(dirty.status).toBe('fail');
    expect(dirty.detail).toContain('shop/views.py');
    expect(dirty.detail).not.toContain('settings.py');
    const moved = check(evaluate(input({ facts: (f) => (f.git.head = 'a'.repeat(40)) })), 'git revision');
    expect(moved.status).toBe('fail');
    expect(moved.fix).toContain('deploy run deploy -s shop');
    expect(check(evaluate(input({ facts: (f) => delete f.deployed })), 'git revision').status).toBe('warn');
    expect(check(evaluate(input({ facts: (f) => (f.git.reach = { code: 128, out: 'fatal: Could not read from remote repository.' }) })), 'git origin').status).toBe('fail');
  });

  it('settings.py that is not the production settings warns', () => {
    expect(check(evaluate(input({ facts: (f) => (f.git.settingsIsProduction = false) })), 'production settings').status).toBe('warn');
  });

  it('disk space: fail under 200 MiB free, warn under 1 GiB', () => {
    const free = (bytes: number) => check(evaluate(input({ facts: (f) => ((f.disk[0] as { freeBytes: number }).freeBytes = bytes) })), 'disk space').status;
    expect(free(100 * 1024 ** 2)).toBe('fail');
    expect(free(500 * 1024 ** 2)).toBe('warn');
    expect(free(20 * 1024 ** 3)).toBe('pass');
  });

  it('serving: the revision and since when; no process fails; none newer than the last deploy warns', () => {
    const ok = check(evaluate(input()), 'serving');
    expect(ok.detail).toContain('b03131d (last deploy, 2026-12-01T10:00:00.000Z); uWSGI up since 2026-12-01T09:00:00Z (pid 100)');
    expect(check(evaluate(input({ facts: (f) => (f.served = []) })), 'serving').status).toBe('fail');
    expect(check(evaluate(input({ facts: (f) => (f.served = f.served.slice(0, 1)) })), 'serving').status).toBe('warn');
  });

  it('an unreadable ini fails and says how to make one from the skeleton', () => {
    const results = evaluate({ ...input(), ini: { error: 'cat: /etc/uwsgi/emperor.d/shop.ini: No such file or directory' }, info: undefined });
    expect(check(results, 'vassal ini')).toMatchObject({ status: 'fail' });
    expect(check(results, 'vassal ini').fix).toContain('app.skel');
  });
});
