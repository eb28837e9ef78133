// The 'deployfile/schemas' entry point, imported by package name as a script
// reading `--json` output would (package.json "exports", the built dist/);
// and the reason it exists: importing 'deployfile' and 'deployfile/tasks',
// as every deployfile does, loads no zod.
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from './helpers/temp-dirs.ts';

afterAll(removeTempDirs);

const REPO = fileURLToPath(new URL('../', import.meta.url));

/** A project with deployfile installed, and a loader hook that says on stderr when a zod module is resolved. */
async function project(): Promise<string> {
  const dir = await tempDir('deployfile-schemas-');
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(REPO, join(dir, 'node_modules', 'deployfile'));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(
    join(dir, 'hooks.mjs'),
    "export async function resolve(specifier, context, next) {\n  const result = await next(specifier, context);\n  if (result.url.includes('/node_modules/zod/')) process.stderr.write('zod loaded\\n');\n  return result;\n}\n",
  );
  writeFileSync(join(dir, 'watch-zod.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
  return dir;
}

function node(dir: string, code: string): { stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', './watch-zod.mjs', '--input-type=module', '-e', code], { cwd: dir, encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  return result;
}

describe("'deployfile/schemas'", () => {
  it("exports the event and plan schemas by package name", async () => {
    const dir = await project();
    const { stdout, stderr } = node(
      dir,
      "const { DeployEvent, PlanDocumentSchema, EVENT_VERSION } = await import('deployfile/schemas');\n" +
        "const event = DeployEvent.parse({ v: EVENT_VERSION, runId: 'r', ts: 't', type: 'log', site: null, level: 'info', message: 'hi' });\n" +
        "console.log(event.type, PlanDocumentSchema.safeParse({}).success);",
    );
    expect(stdout.trim()).toBe('log false');
    expect(stderr).toContain('zod loaded');
  });

  it("is the only entry point that loads zod: 'deployfile' and 'deployfile/tasks' do not", async () => {
    const dir = await project();
    const { stdout, stderr } = node(dir, "const d = await import('deployfile'); const t = await import('deployfile/tasks'); console.log(typeof d.defineDeployfile, typeof t.djangoTasks);");
    expect(stdout.trim()).toBe('function function');
    expect(stderr).not.toContain('zod loaded');
  });
});
