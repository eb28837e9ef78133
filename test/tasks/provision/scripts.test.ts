// The nginx and vassal scripts, run by a real /bin/sh (dash on Debian) in a
// temp directory: "nginx -t" is a grep for a broken line, "reload" appends
// to a file, so each case reads what was left and whether it reloaded.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NGINX_SCRIPT, VASSAL_SCRIPT } from '../../../tasks/provision/nginx.ts';
import { removeTempDirs, tempDir } from '../../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

const GOOD = 'server { listen 80; }\n';
const BROKEN = 'server { listen BROKEN; }\n';

async function nginxDir() {
  const root = await tempDir('deployfile-nginx-script-');
  const confd = join(root, 'conf.d');
  mkdirSync(confd);
  // Like nginx -t over an include of conf.d/*.conf: fails when any included file has a broken line.
  const check = `! grep -qs BROKEN ${confd}/*.conf`;
  const reload = `echo reloaded >> ${root}/reloads`;
  const run = (file: string, link: string, content: string | undefined) =>
    spawnSync('/bin/sh', ['-c', NGINX_SCRIPT, 'nginx', file, link, check, reload, content === undefined ? '0' : '1'], { input: content ?? '', encoding: 'utf8' });
  const reloads = () => (existsSync(join(root, 'reloads')) ? readFileSync(join(root, 'reloads'), 'utf8').split('\n').filter(Boolean).length : 0);
  return { root, confd, run, reloads };
}

describe('the nginx step', () => {
  it('writes a new block, tests it, reloads, and leaves no temp or backup file', async () => {
    const { confd, run, reloads } = await nginxDir();
    const result = run(join(confd, 'shop.conf'), '', GOOD);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toBe('nginx -t passed; nginx reloaded\n');
    expect(readFileSync(join(confd, 'shop.conf'), 'utf8')).toBe(GOOD);
    expect((statSync(join(confd, 'shop.conf')).mode & 0o777).toString(8)).toBe('644');
    expect(readdirSync(confd)).toEqual(['shop.conf']);
    expect(reloads()).toBe(1);
  });

  it('a new block that fails the test is removed, and nginx is not reloaded', async () => {
    const { confd, run, reloads } = await nginxDir();
    writeFileSync(join(confd, 'other.conf'), GOOD);
    const result = run(join(confd, 'shop.conf'), '', BROKEN);
    expect(result.status).toBe(13);
    expect(result.stdout).toContain('nginx -t failed with the new server block:');
    expect(result.stdout).toContain('the previous configuration is back and passes nginx -t; nginx was not reloaded');
    expect(readdirSync(confd)).toEqual(['other.conf']);
    expect(reloads()).toBe(0);
  });

  it('a changed block that fails the test is replaced by the previous one', async () => {
    const { confd, run, reloads } = await nginxDir();
    writeFileSync(join(confd, 'shop.conf'), GOOD);
    expect(run(join(confd, 'shop.conf'), '', BROKEN).status).toBe(13);
    expect(readFileSync(join(confd, 'shop.conf'), 'utf8')).toBe(GOOD);
    expect(readdirSync(confd)).toEqual(['shop.conf']);
    expect(reloads()).toBe(0);
  });

  it('touches nothing when the configuration already fails its test', async () => {
    const { confd, run, reloads } = await nginxDir();
    writeFileSync(join(confd, 'other.conf'), BROKEN);
    const result = run(join(confd, 'shop.conf'), '', GOOD);
    expect(result.status).toBe(10);
    expect(result.stdout).toContain('nginx -t fails before any change, so nothing was written (fix that first):');
    expect(readdirSync(confd)).toEqual(['other.conf']);
    expect(reloads()).toBe(0);
  });

  it('makes the sites-enabled link, and removes it with the block when the test fails', async () => {
    const { root, confd, run } = await nginxDir();
    const available = join(root, 'sites-available');
    mkdirSync(available);
    expect(run(join(available, 'shop'), join(confd, 'shop.conf'), GOOD).status).toBe(0);
    expect(lstatSync(join(confd, 'shop.conf')).isSymbolicLink()).toBe(true);
    expect(run(join(available, 'blog'), join(confd, 'blog.conf'), BROKEN).status).toBe(13);
    expect(readdirSync(confd)).toEqual(['shop.conf']);
    expect(readdirSync(available)).toEqual(['shop']);
  });
});

describe('the vassal write', () => {
  it('puts the whole text in place with its owner and mode 0644, through a temp file the emperor does not watch', async () => {
    const dir = await tempDir('deployfile-vassal-script-');
    const ini = join(dir, 'shop.ini');
    writeFileSync(ini, 'old\n', { mode: 0o600 });
    const { username } = userInfo();
    const group = spawnSync('id', ['-gn'], { encoding: 'utf8' }).stdout.trim();
    const result = spawnSync('/bin/sh', ['-c', VASSAL_SCRIPT, 'vassal', ini, `${username}:${group}`], { input: '[uwsgi]\nchdir = /home/%n\n', encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(ini, 'utf8')).toBe('[uwsgi]\nchdir = /home/%n\n');
    expect((statSync(ini).mode & 0o777).toString(8)).toBe('644');
    expect(readdirSync(dir)).toEqual(['shop.ini']);
  });

  it('leaves the old ini and no temp file when it cannot finish (an unknown owner)', async () => {
    const dir = await tempDir('deployfile-vassal-script-');
    const ini = join(dir, 'shop.ini');
    writeFileSync(ini, 'old\n');
    const result = spawnSync('/bin/sh', ['-c', VASSAL_SCRIPT, 'vassal', ini, 'no-such-user-here:no-such-group'], { input: 'new\n', encoding: 'utf8' });
    expect(result.status).not.toBe(0);
    expect(readFileSync(ini, 'utf8')).toBe('old\n');
    expect(readdirSync(dir)).toEqual(['shop.ini']);
  });
});
