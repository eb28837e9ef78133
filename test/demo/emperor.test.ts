import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { startStandInEmperor, type StandInEmperor } from '../../demo/emperor.ts';

let dir: string;
let emperor: StandInEmperor | undefined;

const git = (...args: string[]): string =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', '-c', 'commit.gpgsign=false', ...args], { cwd: dir, encoding: 'utf8' }).trim();

function get(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

async function until(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deployfile-emperor-'));
  git('init', '-q');
  git('commit', '-q', '--allow-empty', '-m', 'one');
});

afterEach(async () => {
  await emperor?.close();
  emperor = undefined;
  await rm(dir, { recursive: true, force: true });
});

test('the stand-in serves the code dir\'s revision on the http-socket, and a touched ini restarts it with the new one and a Starting line', async () => {
  const ini = join(dir, 'site.ini');
  const socket = join(dir, 'site.sock');
  const log = join(dir, 'site.log');
  await writeFile(ini, `[uwsgi]\nchdir = ${dir}\nhttp-socket = ${socket}\nlogto = ${log}\n`);
  emperor = await startStandInEmperor(ini);
  const first = git('rev-parse', 'HEAD');
  expect(await get(socket, '/revision')).toEqual({ status: 200, body: first });

  git('commit', '-q', '--allow-empty', '-m', 'two');
  const second = git('rev-parse', 'HEAD');
  // Not reloaded yet: the old instance keeps serving what it loaded.
  expect((await get(socket, '/revision')).body).toBe(first);
  const size = (await readFile(log, 'utf8')).length;
  await utimes(ini, new Date(), new Date(Date.now() + 2_000));
  await until(async () => emperor?.reloads === 1 && (await get(socket, '/revision').catch(() => ({ body: '' }))).body === second);
  expect((await readFile(log, 'utf8')).slice(size)).toContain('*** Starting uWSGI (demo stand-in) ***');
  expect((await get(socket, '/missing')).status).toBe(404);
});

test('an ini the stand-in cannot serve is explained in the log in the words touchVassalIni looks for', async () => {
  const ini = join(dir, 'site.ini');
  const log = join(dir, 'site.log');
  await writeFile(ini, `[uwsgi]\nsocket = 127.0.0.1:9\nlogto = ${log}\n`);
  emperor = await startStandInEmperor(ini);
  expect(await readFile(log, 'utf8')).toMatch(/\*\*\* Starting uWSGI[^\n]*\n(.*\n)*unable to load app 0: the demo stand-in needs chdir and an http-socket/);
});
