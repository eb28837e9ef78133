// The provision task on the engine's own TaskContext, over a scripted
// server: the inspection answers with facts, and the test reads what the task
// asked, ran, logged and left for the command's second pass.
import { describe, expect, it } from 'vitest';
import { defaultNginxTemplate, provision, PROVISION_STATE, type ProvisionOptions, type ProvisionState } from '../../../tasks/provision/index.ts';
import type { Facts } from '../../../tasks/provision/inspect.ts';
import { errorOf, scriptedContext, type RecordedCommand } from '../../helpers/task-context.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey op@laptop';
const SKEL = '[uwsgi]\nchdir = /home/%n/Sites/%n\nsocket = /run/uwsgi/%n.sock\n';
const NGINX = defaultNginxTemplate({ site: 'shop', user: 'shop', codeDir: '', virtualenv: '', settings: '', socket: '/run/uwsgi/shop.sock', serverName: 'shop', listen: '80', vars: {} });
const VARS = { siteUser: 'shop', origin: 'git@git.example.com:shop.git', branch: 'main', authorizedKeys: [KEY], localDir: '/nonexistent' };

function facts(provisioned: boolean, vassal = SKEL): Facts {
  const p = (path: string, kind: 'file' | 'dir' | 'link' | 'missing', more: Record<string, unknown> = {}) => ({ path, kind, owner: 'shop', group: 'shop', mode: 0o644, ...more });
  const there = (path: string, kind: 'file' | 'dir' | 'link', more: Record<string, unknown> = {}) => (provisioned ? p(path, kind, more) : { path, kind: 'missing' as const });
  return {
    user: provisioned ? { uid: 1001, gid: 1001, home: '/home/shop', shell: '/bin/bash', password: 'star' } : null,
    groups: { uwsgi: 998, shop: provisioned ? 1001 : null },
    safeDirectories: [],
    paths: {
      authorizedKeys: there('/home/shop/.ssh/authorized_keys', 'file', { content: `${KEY}\n` }),
      codeDir: there('/home/shop/Sites/shop', 'dir'),
      git: there('/home/shop/Sites/shop/.git', 'dir'),
      virtualenv: there('/home/shop/virtualenvs/shop', 'dir'),
      python: there('/home/shop/virtualenvs/shop/bin/python', 'link'),
      requirements: there('/home/shop/Sites/shop/REQUIREMENTS', 'file', { content: 'Django\n' }),
      installed: there('/home/shop/virtualenvs/shop/.deployfile/requirements.installed', 'file', { content: 'Django\n' }),
      vassal: there('/etc/uwsgi/emperor.d/shop.ini', 'file', { content: vassal, group: 'uwsgi' }),
      skeleton: p('/etc/uwsgi/emperor.d/app.skel', 'file', { content: SKEL, owner: 'root', group: 'root' }),
      nginxFile: there('/etc/nginx/sites-available/shop', 'file', { content: NGINX }),
      nginxEnabled: there('/etc/nginx/sites-enabled/shop', 'link', { target: '/etc/nginx/sites-available/shop' }),
    },
  };
}

function server(state: Facts, check: { ok: boolean; answer: string }, answers: boolean[] = []) {
  const shared = new Map<string, unknown>([[PROVISION_STATE, { reach: new Map(), sites: new Map() } satisfies ProvisionState]]);
  const c = scriptedContext({ site: { name: 'shop', user: 'ops', vars: VARS }, shared, answers });
  const socketDir = { path: '/run/uwsgi', kind: 'dir', owner: 'root', group: 'uwsgi', mode: 0o2775 };
  c.script(
    (command) => command.line.includes('python3 - ') && (command.stdin ?? '').includes('import grp'),
    (command: RecordedCommand) => ({ stdout: `${JSON.stringify(command.line.includes('socketDir') ? { ...state, paths: { socketDir } } : state)}\n` }),
  );
  c.script('python3 - http://', { stdout: `${JSON.stringify({ ...check, seconds: 0.1 })}\n` });
  const siteState = () => (shared.get(PROVISION_STATE) as ProvisionState).sites.get('shop');
  const changes = () => c.recorder.commands.filter((command) => !command.line.includes('python3 - ') && !command.internal);
  return { c, siteState, changes };
}

describe('the provision task', () => {
  it('on a provisioned site that answers: nothing to change, nothing asked or run, no deploy next', async () => {
    const { c, siteState, changes } = server(facts(true), { ok: true, answer: 'HTTP 200' });
    await provision().run(c);
    expect(c.recorder.questions).toEqual([]);
    expect(changes()).toEqual([]);
    expect(c.recorder.logs.join('\n')).toContain('  nothing to change');
    expect(c.recorder.logs).toContain('shop: nothing to change; it answers HTTP 200 through nginx (http://127.0.0.1:80/, Host: shop)');
    expect(siteState()).toEqual({ deploy: false, changes: 0, check: { url: 'http://127.0.0.1:80/', host: 'shop' } });
    // Through an admin that is not root: the inspection goes through sudo.
    expect(c.recorder.commands[0]!.line).toMatch(/^sudo -n -H -- sh -c 'python3 - /);
  });

  it('on a provisioned site that does not answer: nothing to change, and a deploy next', async () => {
    const { c, siteState } = server(facts(true), { ok: false, answer: 'HTTP 502' });
    await provision().run(c);
    expect(c.recorder.warnings).toEqual(['shop: nothing to change, but it does not answer through nginx (HTTP 502): it gets a deploy next']);
    expect(siteState()?.deploy).toBe(true);
  });

  it('asks before any change; no is nothing changed', async () => {
    const { c, changes, siteState } = server(facts(false), { ok: true, answer: 'HTTP 200' }, [false]);
    const error = await errorOf(provision().run(c));
    expect(c.recorder.questions).toEqual(['Provision shop on web1.example.com: apply the 7 changes above?']);
    expect(error.message).toBe('shop: not provisioned: the plan was not accepted (without a terminal, --yes accepts it); nothing was changed');
    expect(changes()).toEqual([]);
    expect(siteState()).toBeUndefined();
  });

  it("writes the deployfile's vassal template, as the site's user for its files and as root for the rest, and leaves the first deploy to the next pass", async () => {
    const template = (v: { site: string; user: string; codeDir: string }) => `[uwsgi]\nchdir = ${v.codeDir}\nsocket = /run/uwsgi/${v.site}.sock\n`;
    const { c, changes, siteState } = server(facts(false), { ok: true, answer: 'HTTP 200' }, [true]);
    await provision({ vassalTemplate: template } satisfies ProvisionOptions).run(c);
    expect(c.recorder.logs.join('\n')).toContain("will: write the vassal /etc/uwsgi/emperor.d/shop.ini from the deployfile's vassalTemplate");
    const lines = changes().map((command) => command.line);
    expect(lines[0]).toBe("sudo -n -H -- sh -c 'useradd --create-home --user-group --shell /bin/bash --password '\\''*'\\'' shop'");
    expect(lines[2]).toBe("sudo -n -H -u shop -- sh -c 'cd && mkdir -p /home/shop/Sites && git clone --quiet --branch main git@git.example.com:shop.git /home/shop/Sites/shop'");
    const vassal = changes().find((command) => command.line.includes('vassal /etc/uwsgi/emperor.d/shop.ini shop:uwsgi'));
    expect(vassal?.stdin).toBe('[uwsgi]\nchdir = /home/shop/Sites/shop\nsocket = /run/uwsgi/shop.sock\n');
    expect(c.recorder.reports).toEqual(['provisioned: 7 changes; first deploy next']);
    expect(siteState()).toMatchObject({ deploy: true, changes: 7 });
  });

  it('a failed step stops the rest and says what was done and what was not', async () => {
    const { c } = server(facts(false), { ok: true, answer: 'HTTP 200' }, [true]);
    c.script('git clone', { stderr: 'ERROR: Repository not found.\nfatal: Could not read from remote repository.\n', exitCode: 128 });
    const error = await errorOf(provision().run(c));
    expect(error.message.split('\n')).toEqual([
      'shop: provision failed at the clone into /home/shop/Sites/shop:',
      '  ERROR: Repository not found.',
      '  fatal: Could not read from remote repository.',
      'done: user shop, authorized_keys',
      'not done: virtualenv /home/shop/virtualenvs/shop, requirements, vassal /etc/uwsgi/emperor.d/shop.ini, nginx server block /etc/nginx/sites-available/shop',
      'Fix the cause and run deploy provision again: it starts from what exists.',
    ]);
  });
});
