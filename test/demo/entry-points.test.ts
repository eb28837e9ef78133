import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEPLOY_BIN } from '../helpers/cli.ts';

// The demo and its embedded SSH server are the package's `deployfile/demo`
// entry point (dist/demo/), which only `deploy demo` loads. These runs list
// every module the built package loads and check that the core never does.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOOKS = pathToFileURL(fileURLToPath(new URL('./fixtures/log-loads.mjs', import.meta.url))).href;
const REGISTER = `data:text/javascript,import{register}from'node:module';register(${JSON.stringify(HOOKS)})`;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'deployfile-loads-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Runs node with `args` and returns the package files it loaded, relative to the repository root. */
async function loadedFiles(name: string, args: string[]): Promise<string[]> {
  const log = join(tmp, `${name}.log`);
  const run = spawnSync(process.execPath, ['--import', REGISTER, ...args], { cwd: tmp, env: { ...process.env, LOG_LOADS: log, NO_COLOR: '1', CI: '1' }, encoding: 'utf8' });
  expect(run.error).toBeUndefined();
  const urls = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  return urls.map((url) => fileURLToPath(url)).filter((file) => file.startsWith(ROOT)).map((file) => file.slice(ROOT.length));
}

const demoParts = (files: string[]): string[] => files.filter((file) => /(^|\/)(demo|embedded-ssh)\//.test(file) && !file.startsWith('node_modules/'));

describe('the core runtime leaves the demo and its SSH server out', () => {
  test("import 'deployfile' loads neither", async () => {
    const files = await loadedFiles('import', ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/src/index.js')).href)})`]);
    expect(files).toContain('dist/src/index.js');
    expect(demoParts(files)).toEqual([]);
  });

  test('deploy --help loads neither', async () => {
    const files = await loadedFiles('help', [DEPLOY_BIN, '--help']);
    expect(files).toContain('dist/src/cli/main.js');
    expect(demoParts(files)).toEqual([]);
  });

  test('deploy run loads neither (everything it needs to run a task, up to loading the deployfile)', async () => {
    const files = await loadedFiles('run', [DEPLOY_BIN, 'run', 'deploy', '-f', join(tmp, 'no-such-deployfile.ts')]);
    expect(files).toContain('dist/src/cli/engine.js');
    expect(files).toContain('dist/src/executor/executor.js');
    expect(demoParts(files)).toEqual([]);
  });

  test('deploy demo is what loads them, through the deployfile/demo entry point', async () => {
    // The command's module, as main.ts imports it for `deploy demo`, without running the demo.
    const files = await loadedFiles('demo', ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/src/cli/demo.js')).href)})`]);
    expect(files).toContain('dist/demo/index.js');
    expect(files).toContain('dist/demo/embedded-ssh/server.js');
  });
});
