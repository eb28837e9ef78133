// The reload probe speaking FastCGI to a real uWSGI `fastcgi-socket` (what
// nginx's fastcgi_pass and Apache's mod_fcgid talk to): an app that answers
// is seen answering, and a vassal without a loadable app is told apart.
// Needs uWSGI with its python3 plugin (Debian: uwsgi-core, uwsgi-plugin-python3,
// installed by .ci/install-lab-packages); skipped, saying why, without it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ProbeOutcome } from '../../tasks/uwsgi.ts';
import { runProbe } from '../helpers/probe.ts';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';

const UWSGI = '/usr/bin/uwsgi';
const missing = !existsSync(UWSGI)
  ? `${UWSGI} is not installed`
  : spawnSync(UWSGI, ['--plugin', 'python3', '--help'], { stdio: 'ignore' }).status !== 0
    ? "uWSGI's python3 plugin is not installed"
    : spawnSync('python3', ['--version']).status !== 0
      ? 'python3 is not installed'
      : undefined;

const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    await gone;
  }
});
afterAll(removeTempDirs);

/** A uWSGI instance on a FastCGI unix socket serving `app` (a wsgi file's text). */
async function fastcgiVassal(app: string): Promise<string> {
  const dir = await tempDir('deployfile-fastcgi-');
  const sock = join(dir, 'app.sock');
  writeFileSync(join(dir, 'app.py'), app);
  const child = spawn(UWSGI, ['--plugin', 'python3', '--master', '--processes', '1', '--fastcgi-socket', sock, '--chdir', dir, '--wsgi-file', join(dir, 'app.py'), '--die-on-term'], { stdio: 'ignore' });
  children.push(child);
  return sock;
}

function waitVerdict(sock: string): Promise<ProbeOutcome> {
  return runProbe<ProbeOutcome>('wait', { ini: '/nonexistent.ini', socket: sock, protocol: 'fastcgi', timeout: 20, interval: 0.2, grace: 0, settle: 30, path: '/revision' });
}

describe.skipIf(missing !== undefined)(`the reload probe over FastCGI${missing ? ` (skipped: ${missing})` : ''}`, () => {
  it('sees a FastCGI app answer, with its status', async () => {
    const sock = await fastcgiVassal(
      "def application(env, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [('rev-1 ' + env['PATH_INFO']).encode()]\n",
    );
    const verdict = await waitVerdict(sock);
    expect(verdict).toMatchObject({ ok: true, kind: 'answered', status: 200, body: 'rev-1 /revision' });
    expect(verdict.probe).toBe('FastCGI Status: 200 OK');
  }, 40_000);

  it('tells a vassal with no loadable app from one that answers', async () => {
    const sock = await fastcgiVassal('import missing_module_xyz\n');
    const verdict = await waitVerdict(sock);
    expect(verdict).toMatchObject({ ok: false, kind: 'no-app' });
  }, 40_000);
});
