import { execFile } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { appInfo, appServerOf } from '../../../tasks/reload/app.ts';
import { planReload, reloadStrategyOf } from '../../../tasks/reload/strategy.ts';
import { removeTempDirs, tempDir } from '../../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

const plan = (value: unknown) => planReload(reloadStrategyOf(value, 'shop'), {}, '/etc/uwsgi/emperor.d/shop.ini');
const text = (value: unknown) => String(plan(value).command);

/**
 * Run a composed reload through a real /bin/sh with stand-ins for the
 * supervisors' tools first on PATH, each printing the argv it got (and
 * XDG_RUNTIME_DIR): the lab cannot run systemd as process 1, so this is how
 * the systemd reloads are tested, as composed and as the shell splits them.
 */
async function runComposed(command: string, env: Record<string, string> = {}): Promise<string> {
  const bin = await tempDir('deployfile-service-bin-');
  for (const tool of ['sudo', 'systemctl', 'supervisorctl', 'svc', 'sv', 'apachectl']) {
    const file = join(bin, tool);
    // sudo -n runs what follows it, as the real one does when a NOPASSWD rule allows it.
    const body = tool === 'sudo' ? 'printf "sudo[%s]\\n" "$*"; [ "$1" = -n ] && shift; exec "$@"' : `printf '${tool}'; for a in "$@"; do printf ' <%s>' "$a"; done; printf ' XDG=%s\\n' "$XDG_RUNTIME_DIR"`;
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
  }
  return new Promise((resolve, reject) =>
    execFile('/bin/sh', ['-c', command], { env: { PATH: `${bin}:/usr/bin:/bin`, ...env } }, (error, stdout, stderr) => (error ? reject(new Error(stderr || String(error))) : resolve(stdout))),
  );
}

describe('reloads of a supervised app server', () => {
  it('composes each supervisor\'s restart', () => {
    expect(text({ supervisor: 'shop' })).toBe("supervisorctl restart shop");
    expect(text({ supervisor: 'shop', config: '/etc/supervisor/shop.conf' })).toBe("supervisorctl -c /etc/supervisor/shop.conf restart shop");
    expect(text({ daemontools: '/etc/service/shop' })).toBe("svc -t /etc/service/shop");
    expect(text({ daemontools: '/etc/service/shop', sudo: true })).toBe("sudo -n svc -t /etc/service/shop");
    expect(text({ runit: 'shop' })).toBe("sv restart shop");
    expect(text({ fcgid: '/home/shop/public_html/shop.fcgi' })).toBe("touch /home/shop/public_html/shop.fcgi");
    expect(text({ command: 'kill -HUP $(cat ~/app.pid)', sudo: true })).toBe("sudo -n sh -c 'kill -HUP $(cat ~/app.pid)'");
  });

  it('a system unit and Apache need root: sudo unless sudo: false; a --user unit never', () => {
    expect(text({ systemd: 'shop.service' })).toBe("sudo -n systemctl restart shop.service");
    expect(text({ systemd: 'shop.service', sudo: false })).toBe("systemctl restart shop.service");
    expect(text({ systemd: 'shop.service', user: true })).toContain("systemctl --user restart shop.service");
    expect(text({ apache: 'graceful' })).toBe("sudo -n apachectl graceful");
    expect(() => reloadStrategyOf({ systemd: 'shop.service', user: true, sudo: true }, 'shop')).toThrow('a --user unit is the site user\'s own: it needs no sudo');
  });

  it('systemd, as the shell runs it: the unit one word through sudo; a --user unit finds the user manager without a session', async () => {
    expect(await runComposed(text({ systemd: 'my shop.service' }))).toBe("sudo[-n systemctl restart my shop.service]\nsystemctl <restart> <my shop.service> XDG=\n");
    const uid = process.getuid?.() ?? 0;
    expect(await runComposed(text({ systemd: 'shop.service', user: true }))).toBe(`systemctl <--user> <restart> <shop.service> XDG=/run/user/${uid}\n`);
    // A login session's own XDG_RUNTIME_DIR is kept.
    expect(await runComposed(text({ systemd: 'shop.service', user: true }), { XDG_RUNTIME_DIR: '/run/user/4242' })).toBe('systemctl <--user> <restart> <shop.service> XDG=/run/user/4242\n');
  });

  it('labels and hints say what runs and what to fix; the check explains a failed restart instead of stopping at it', () => {
    const supervisor = plan({ supervisor: 'shop' });
    expect(supervisor).toMatchObject({ label: 'supervisorctl restart shop', since: 'the restart', explainFailure: true, touchesIni: false });
    expect(supervisor.hint).toContain('[unix_http_server]');
    expect(plan({ daemontools: '/etc/service/shop', sudo: true }).hint).toContain('<site> ALL=(root) NOPASSWD: <the command above>');
    expect(plan({ fcgid: '/srv/shop.fcgi' })).toMatchObject({ marker: '/srv/shop.fcgi', since: 'the touch' });
  });

  it('refuses a reload it cannot read, naming what it takes', () => {
    expect(() => reloadStrategyOf({ supervisor: 'shop', runit: 'shop' }, 'shop')).toThrow('names supervisor and runit: choose one');
    expect(() => reloadStrategyOf({ supervisor: '' }, 'shop')).toThrow('supervisor must name the [program:...] name');
    expect(() => reloadStrategyOf({ runit: 'shop', config: 'x' }, 'shop')).toThrow('unknown key "config" for a runit reload (it takes runit, sudo)');
    expect(() => reloadStrategyOf({ apache: 'reload' }, 'shop')).toThrow("apache must be 'graceful' or 'restart'");
    expect(() => reloadStrategyOf({ command: 'x', user: true }, 'shop')).toThrow('unknown key "user" (it takes command, sudo)');
  });
});

describe("a site's app server (vars.app)", () => {
  it('is checked, with an example of a good one', () => {
    expect(appServerOf(undefined, 'shop')).toBeUndefined();
    expect(appServerOf({ program: 'gunicorn', socket: '127.0.0.1:8001' }, 'shop')).toEqual({ program: 'gunicorn', socket: '127.0.0.1:8001' });
    expect(() => appServerOf({ socket: 'x' }, 'shop')).toThrow(/needs program: .*Example: app: \{ program: 'gunicorn'/);
    expect(() => appServerOf({ program: 'gunicorn', protocol: 'wsgi' }, 'shop')).toThrow('.protocol must be one of http, uwsgi, fastcgi');
    expect(() => appServerOf({ program: 'gunicorn', sockets: 'x' }, 'shop')).toThrow('unknown key "sockets"');
  });

  it('gives the check what a vassal ini would: the socket (http by default) and how to load the app again', () => {
    const info = appInfo({ program: 'gunicorn', socket: '/run/shop.sock', module: 'shop.wsgi:app', env: { DJANGO_SETTINGS_MODULE: 'shop.settings' } }, { codeDir: '/home/shop/Sites/shop', virtualenv: '/home/shop/virtualenvs/shop' });
    expect(info.socket).toEqual({ protocol: 'http', address: '/run/shop.sock' });
    expect(info.load).toEqual({ chdir: '/home/shop/Sites/shop', home: '/home/shop/virtualenvs/shop', env: [['DJANGO_SETTINGS_MODULE', 'shop.settings']], pythonpath: [], module: 'shop.wsgi', callable: 'app' });
  });
});
