import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { unifiedDiff } from '../../../tasks/provision/diff.ts';
import { listenPort, localFacts, provisionSettings } from '../../../tasks/provision/options.ts';
import { removeTempDirs, tempDir } from '../../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey op@laptop';
const site = (vars: Record<string, unknown> = {}) => ({ name: 'shop', user: 'ops', host: 'web1', port: 22, vars: { siteUser: 'shop', ...vars } });
const local = { origin: 'git@git.example.com:shop.git', branch: 'main', keys: [KEY] };

describe('provision settings', () => {
  it('default to the seed layout on Debian, the working copy and the operator key', () => {
    const s = provisionSettings(site(), {}, local);
    expect(s).toMatchObject({
      user: 'shop',
      codeDir: '/home/shop/Sites/shop',
      virtualenv: '/home/shop/virtualenvs/shop',
      vassal: '/etc/uwsgi/emperor.d/shop.ini',
      vassalSkeleton: '/etc/uwsgi/emperor.d/app.skel',
      uwsgiGroup: 'uwsgi',
      origin: 'git@git.example.com:shop.git',
      branch: 'main',
      authorizedKeys: [KEY],
      nginxFile: '/etc/nginx/sites-available/shop',
      nginxEnabled: '/etc/nginx/sites-enabled/shop',
      nginxTest: 'nginx -t',
      nginxReload: 'nginx -s reload',
      serverName: 'shop',
      listen: '80',
      checkUrl: 'http://127.0.0.1:80/',
      python: 'python3',
      virtualenvArgs: [],
      installedCopy: '/home/shop/virtualenvs/shop/.deployfile/requirements.installed',
    });
  });

  it('take options (for every site, {site} expanded) and vars (per site, winning)', () => {
    const s = provisionSettings(site({ serverName: 'shop.example.com', listen: '127.0.0.1:8081', nginxEnabled: false }), { nginxFile: '/etc/nginx/conf.d/{site}.conf', serverName: 'ignored', virtualenvArgs: ['--system-site-packages'] }, local);
    expect(s).toMatchObject({ nginxFile: '/etc/nginx/conf.d/shop.conf', nginxEnabled: undefined, serverName: 'shop.example.com', checkUrl: 'http://127.0.0.1:8081/', virtualenvArgs: ['--system-site-packages'] });
  });

  it("clone as the site user, or through the admin's agent when the site forwards one", () => {
    expect(provisionSettings(site(), {}, local).cloneAs).toBe('site');
    expect(provisionSettings(site(), {}, { ...local, forwardAgent: true }).cloneAs).toBe('admin');
    expect(provisionSettings(site({ cloneAs: 'site' }), {}, { ...local, forwardAgent: true }).cloneAs).toBe('site');
    expect(() => provisionSettings(site({ cloneAs: 'root' }), {}, local)).toThrow("vars.cloneAs must be 'site' or 'admin'");
  });

  it('refuse a wrong type in vars, naming it', () => {
    expect(() => provisionSettings(site({ virtualenvArgs: '--system-site-packages' }), {}, local)).toThrow('site "shop": vars.virtualenvArgs must be a list of strings, got "--system-site-packages"');
  });

  it('need the site user that adminSite puts in vars (deploy provision, not deploy run)', () => {
    expect(() => provisionSettings({ ...site(), vars: {} }, {}, local)).toThrow('provision runs through the admin account (deploy provision -s shop)');
  });

  it("the check's port is the listen's", () => {
    expect(listenPort('80')).toBe('80');
    expect(listenPort('127.0.0.1:8081')).toBe('8081');
    expect(listenPort('[::1]:8443 ssl default_server')).toBe('8443');
  });
});

describe("the operator's side of the defaults", () => {
  it("reads the working copy's origin (a relative one made absolute) and branch, and the .pub beside the identity file", async () => {
    const dir = await tempDir('deployfile-provision-local-');
    const work = join(dir, 'shop');
    mkdirSync(work);
    execFileSync('git', ['init', '-q', '-b', 'trunk', work]);
    execFileSync('git', ['-C', work, 'remote', 'add', 'origin', '../shop.git']);
    writeFileSync(join(dir, 'id_deploy.pub'), `${KEY}\n`);
    const git = (args: string[]) => {
      try {
        return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      } catch {
        return undefined;
      }
    };
    expect(localFacts(work, { identityFile: join(dir, 'id_deploy') }, git)).toEqual({ origin: join(dir, 'shop.git'), branch: 'trunk', keys: [KEY], forwardAgent: undefined });
  });

  it("falls back to the agent's keys when no .pub file is found", async () => {
    const dir = await tempDir('deployfile-provision-local-');
    const agent = () => `${KEY}\necdsa-sha2-nistp256 AAAAE2VjZHNh agent-key\n`;
    // A HOME of the test's own (homedir() reads it): never the operator's ~/.ssh.
    const home = process.env.HOME;
    process.env.HOME = dir;
    try {
      expect(localFacts(dir, { identityFile: join(dir, 'id_missing') }, () => undefined, agent).keys).toEqual([KEY, 'ecdsa-sha2-nistp256 AAAAE2VjZHNh agent-key']);
      mkdirSync(join(dir, '.ssh'));
      writeFileSync(join(dir, '.ssh', 'id_ed25519.pub'), `${KEY}\n`);
      expect(localFacts(dir, {}, () => undefined, agent).keys).toEqual([KEY]);
    } finally {
      process.env.HOME = home;
    }
  });
});

describe('the diffs in the plan', () => {
  it('show a new file whole, and a change with its context', () => {
    expect(unifiedDiff(undefined, 'a\nb\n', '/etc/x')).toBe('--- /dev/null\n+++ /etc/x (new)\n@@ -0,0 +1,2 @@\n+a\n+b');
    const before = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'].join('\n');
    const after = before.replace('5', 'five');
    expect(unifiedDiff(before, after, '/etc/x')).toBe('--- /etc/x\n+++ /etc/x (new)\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8');
  });

  it('split far-apart changes into hunks', () => {
    const lines = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`);
    const after = lines.map((line, i) => (i === 1 || i === 17 ? `${line} changed` : line)).join('\n');
    const diff = unifiedDiff(lines.join('\n'), after, 'f');
    expect(diff.split('\n').filter((line) => line.startsWith('@@'))).toEqual(['@@ -1,5 +1,5 @@', '@@ -15,6 +15,6 @@']);
  });
});
