import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planReload, ReloadRefused, reloadStrategyOf } from '../../../tasks/reload/strategy.ts';
import { parseVassalIni } from '../../../tasks/uwsgi.ts';
import { removeTempDirs, tempDir } from '../../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

const INI = '/etc/uwsgi/emperor.d/shop.ini';
const vassal = (lines: string[]) => parseVassalIni(`[uwsgi]\n${lines.join('\n')}\n`, INI);
const refusal = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ReloadRefused);
    return (error as Error).message;
  }
  throw new Error('expected a ReloadRefused');
};
const sh = (line: string): Promise<{ code: number; stderr: string }> =>
  new Promise((resolve) => execFile('/bin/sh', ['-c', line], { timeout: 15_000 }, (error, _stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stderr })));

describe('reload strategies', () => {
  it('reads the strategy from the deployfile, and names the choices for a bad one', () => {
    expect(reloadStrategyOf(undefined, 'shop')).toBe('touch');
    expect(reloadStrategyOf('chain', 'shop')).toBe('chain');
    expect(reloadStrategyOf({ command: 'svc -t ~/service' }, 'shop')).toEqual({ command: 'svc -t ~/service' });
    expect(() => reloadStrategyOf('restart', 'shop')).toThrow(
      `site "shop": reload must be one of 'touch', 'touch-reload', 'fifo', 'chain', 'sudo-touch', { command: '...' }, or a service: { supervisor }, { daemontools }, { runit }, { systemd }, { apache }, { fcgid }; got "restart"`,
    );
  });

  it('touch and sudo-touch touch the vassal ini; touch-reload the file the ini names', () => {
    expect(planReload('touch', vassal([]), INI)).toMatchObject({ label: `touch ${INI}`, touchesIni: true, since: 'the touch' });
    // A plain sudo -n: a sudoers rule for exactly this touch cannot allow c.sudo's sh -c.
    const sudo = planReload('sudo-touch', vassal([]), INI);
    expect(sudo).toMatchObject({ label: `sudo -n touch ${INI}`, touchesIni: false });
    expect(String(sudo.command)).toBe(`sudo -n touch ${INI}`);
    expect(sudo.hint).toContain(`<site> ALL=(root) NOPASSWD: /usr/bin/touch ${INI}`);
    const plan = planReload('touch-reload', vassal(['touch-reload = /home/%n/reload']), INI);
    expect(String(plan.command)).toBe('touch /home/shop/reload');
    expect(refusal(() => planReload('touch-reload', vassal([]), INI))).toContain(`${INI} has no touch-reload line`);
  });

  it('fifo and chain need a master-fifo; chain needs lazy-apps and two workers, and says why (uWSGI #2001)', () => {
    expect(refusal(() => planReload('fifo', vassal([]), INI))).toContain(`reload 'fifo': ${INI} has no master-fifo line`);
    expect(planReload('fifo', vassal(['master-fifo = /home/shop/uwsgi.fifo']), INI).label).toBe('write r to the master FIFO /home/shop/uwsgi.fifo (graceful reload)');
    const one = refusal(() => planReload('chain', vassal(['master-fifo = /home/shop/uwsgi.fifo', 'lazy-apps = true']), INI));
    expect(one).toContain('needs at least 2 workers (it has 1; processes = 2)');
    expect(one).toContain('uWSGI issue #2001');
    expect(refusal(() => planReload('chain', vassal(['master-fifo = /f', 'processes = 4']), INI))).toContain('needs lazy-apps = true');
    expect(planReload('chain', vassal(['master-fifo = /f', 'processes = 2', 'lazy-apps = true']), INI).label).toBe('write c to the master FIFO /f (chain reload)');
  });

  it("the FIFO command writes its letter to a master reading the FIFO, and explains a missing FIFO or master instead of blocking or creating a file", async () => {
    const dir = await tempDir('deployfile-fifo-');
    const fifo = join(dir, 'master.fifo');
    const command = String(planReload('fifo', vassal([`master-fifo = ${fifo}`]), INI).command);

    const notThere = await sh(command);
    expect(notThere.code).toBe(3);
    expect(notThere.stderr).toContain(`${fifo} is not a FIFO: is the vassal running with this master-fifo?`);
    expect(existsSync(fifo)).toBe(false);

    await sh(`mkfifo ${fifo}`);
    const noReader = await sh(command);
    expect(noReader.code).toBe(4);
    expect(noReader.stderr).toContain(`no uWSGI master read ${fifo} within 5s`);
    expect(statSync(fifo).isFIFO()).toBe(true);

    const reader = spawn('/bin/sh', ['-c', `cat ${fifo} > ${join(dir, 'read')}`]);
    const done = new Promise((resolve) => reader.on('close', resolve));
    const written = await sh(command);
    await done;
    expect(written.code).toBe(0);
    expect(readFileSync(join(dir, 'read'), 'utf8')).toBe('r');
  }, 30_000);
});
