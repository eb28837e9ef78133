// deployfile as a user's project has it: installed under node_modules (the
// built dist/, through package.json "exports"), and a loader hook that names
// on stderr every module it resolves, so a test can say what an import loads.
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { tempDir } from './temp-dirs.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** A project directory with deployfile installed; remove it with removeTempDirs. */
export async function installedProject(): Promise<string> {
  const dir = await tempDir('deployfile-installed-');
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(REPO, join(dir, 'node_modules', 'deployfile'));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(
    join(dir, 'hooks.mjs'),
    "export async function resolve(specifier, context, next) {\n  const result = await next(specifier, context);\n  process.stderr.write(`resolved ${result.url}\\n`);\n  return result;\n}\n",
  );
  writeFileSync(join(dir, 'watch.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
  return dir;
}

/** Run `code` as an ES module in the project; its output, and the URLs of the modules it loaded (deployfile's relative to the package). */
export function runInProject(dir: string, code: string): { stdout: string; loaded: string[] } {
  const result = spawnSync(process.execPath, ['--import', './watch.mjs', '--input-type=module', '-e', code], { cwd: dir, encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  const loaded = result.stderr
    .split('\n')
    .filter((line) => line.startsWith('resolved '))
    .map((line) => line.slice('resolved '.length).replace(`file://${REPO}`, ''));
  return { stdout: result.stdout, loaded };
}
