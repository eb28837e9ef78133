import { describe, expect, it } from 'vitest';
import { doctor, DoctorFailedError } from '../../../tasks/doctor/index.ts';
import type { AdminFacts, SiteFacts } from '../../../tasks/doctor/facts.ts';
import { errorOf, scriptedContext } from '../../helpers/task-context.ts';

// The doctor task over a scripted server: who runs what (the site user
// through sudo when there is an admin account), one check event per verdict,
// the site failing exactly when a check fails, and nothing written.

const INI = `[uwsgi]
plugin = python3
chdir = /home/shop/Sites/shop
virtualenv = /home/shop/virtualenvs/shop
module = shop.wsgi:application
socket = /run/uwsgi/shop.sock
`;

function facts(change: (f: SiteFacts) => void = () => {}): string {
  const f: SiteFacts = {
    user: { name: 'shop', uid: 1001, gid: 1001, groups: ['shop'] },
    ini: { path: '/etc/uwsgi/emperor.d/shop.ini', uid: 1001, gid: 995, user: 'shop', group: 'uwsgi', mode: '0644' },
    chdir: { path: '/home/shop/Sites/shop', isDir: true },
    venv: { path: '/home/shop/virtualenvs/shop', python: '/home/shop/virtualenvs/shop/bin/python', exists: true, version: '3.11.2', systemSitePackages: false },
    emperor: { pid: 7, binary: '/usr/bin/uwsgi', watches: '/etc/uwsgi/emperor.d', tyrant: true },
    uwsgi: { binary: '/usr/bin/uwsgi', pythonBuiltin: false },
    repro: { ok: true, command: '' },
    pipCheck: { code: 0, out: '' },
    requirements: { file: 'REQUIREMENTS', names: ['Django'], missing: [] },
    unreadable: [],
    socketDir: { path: '/run/uwsgi', user: 'root', group: 'uwsgi', mode: '2775' },
    socketFile: { path: '/run/uwsgi/shop.sock', user: 'shop', group: 'uwsgi', mode: '0660', isSocket: true },
    git: { head: 'abc1234abc', status: [], origin: 'o', reach: { code: 0, out: '' }, settingsIsProduction: true },
    deployed: { time: '2026-12-01T10:00:00Z', revision: 'abc1234abc', operator: 'op' },
    disk: [{ path: '/home/shop', freeBytes: 10 * 1024 ** 3, totalBytes: 20 * 1024 ** 3 }],
    served: [{ pid: 1, startedAt: Date.parse('2026-12-01T10:00:05Z') / 1000 }],
  };
  change(f);
  return `${JSON.stringify(f)}\n`;
}

const ADMIN: AdminFacts = {
  uid: 0,
  nginx: [{ pid: 9, command: 'nginx -T', dump: '# configuration file x\nuwsgi_pass unix:/run/uwsgi/shop.sock;\n' }],
  nginxUser: 'www-data',
  nginxUserKnown: true,
  nginxGroups: ['www-data', 'uwsgi'],
  connect: { ok: true },
};

function throughAdmin(siteFacts = facts()) {
  // What adminSite() makes of a site with admin: 'ops'.
  const c = scriptedContext({ site: { name: 'shop', user: 'ops', vars: { siteUser: 'shop' } } });
  c.script('cat ', { stdout: INI });
  c.script('python3 - site', { stdout: siteFacts });
  c.script('python3 - admin', { stdout: `${JSON.stringify(ADMIN)}\n` });
  return c;
}

describe('doctor', () => {
  it('takes no lock (so writes no history)', () => {
    expect(doctor().lock).toBe(false);
  });

  it('through the admin account: site checks as the site user with sudo -u, the privileged ones as root; every check an event', async () => {
    const c = throughAdmin();
    await doctor().run(c);
    const shown = c.recorder.commands.filter((command) => !command.internal).map((command) => command.line);
    expect(shown).toHaveLength(3);
    expect(shown[0]).toMatch(/^sudo -n -H -u shop -- sh -c .*cat \/etc\/uwsgi\/emperor\.d\/shop\.ini/);
    expect(shown[1]).toMatch(/^sudo -n -H -u shop -- sh -c .*python3 - site --spec/);
    expect(shown[2]).toMatch(/^sudo -n -H -- sh -c .*python3 - admin --spec/);
    expect(c.recorder.checks.length).toBeGreaterThan(12);
    expect(c.recorder.checks.filter((check) => check.status !== 'pass')).toEqual([]);
    expect(c.recorder.reports).toEqual([expect.stringMatching(/^doctor: \d+ pass, 0 warn, 0 fail \(through ops\)$/)]);
  });

  it('without an admin account: everything as the site user, no sudo', async () => {
    const c = scriptedContext({ site: { name: 'shop', user: 'shop' } });
    c.script('cat ', { stdout: INI }).script('python3 - site', { stdout: facts() }).script('python3 - admin', { stdout: `${JSON.stringify({ ...ADMIN, uid: 1001, connect: undefined })}\n` });
    await doctor().run(c);
    expect(c.recorder.lines.some((line) => line.includes('sudo'))).toBe(false);
    expect(c.recorder.checks.find((check) => check.name === 'socket')?.detail).toContain('from its permissions');
  });

  it('fails the site naming the failed checks, after reporting every check', async () => {
    const c = throughAdmin(facts((f) => Object.assign(f.ini, { uid: 0, gid: 0, user: 'root', group: 'root' })));
    const error = await errorOf(doctor().run(c));
    expect(error).toBeInstanceOf(DoctorFailedError);
    expect((error as Error).message).toBe('shop: 1 check failed: vassal ini owner');
    expect(c.recorder.checks.length).toBeGreaterThan(12);
  });

  it('warnings alone do not fail the site', async () => {
    await doctor().run(throughAdmin(facts((f) => (f.pipCheck = { code: 1, out: 'pygobject 3.42.2 requires pycairo, which is not installed.\n' }))));
  });

  it('facts that cannot be gathered fail the site, saying why', async () => {
    const c = scriptedContext({ site: { name: 'shop', user: 'shop' } });
    c.script('cat ', { stdout: INI }).script('python3 - site', { stderr: 'sh: python3: not found\n', exitCode: 127 }).script('python3 - admin', { exitCode: 127 });
    const error = await errorOf(doctor().run(c));
    expect((error as Error).message).toContain('facts');
    expect(c.recorder.checks.find((check) => check.name === 'facts')).toMatchObject({ status: 'fail', fix: 'install python3 on the server' });
  });

  it('a dry run prints the first command and judges nothing', async () => {
    const c = scriptedContext({ dryRun: true });
    await doctor().run(c);
    expect(c.recorder.checks).toEqual([]);
  });

  it("a site whose app server is not a uWSGI vassal (vars.app) is not judged by the vassal's checks: it says so, reads nothing, and does not fail", async () => {
    const c = scriptedContext({ site: { name: 'shop', user: 'shop', vars: { app: { program: 'gunicorn' } } } });
    await doctor().run(c);
    expect(c.recorder.lines).toEqual([]);
    expect(c.recorder.checks).toEqual([
      expect.objectContaining({ name: 'app server', status: 'warn', detail: "gunicorn (vars.app) is not a uWSGI vassal: doctor's checks are written for the emperor's stack and were not run" }),
    ]);
  });
});
