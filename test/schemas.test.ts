// The 'deployfile/schemas' entry point, imported by package name as a script
// reading `--json` output would (package.json "exports", the built dist/);
// and the reason it exists: importing 'deployfile' and 'deployfile/tasks',
// as every deployfile does, loads no zod.
import { afterAll, describe, expect, it } from 'vitest';
import { installedProject, runInProject } from './helpers/installed-package.ts';
import { removeTempDirs } from './helpers/temp-dirs.ts';

afterAll(removeTempDirs);

const zodLoaded = (loaded: string[]): boolean => loaded.some((url) => url.includes('node_modules/zod/'));

describe("'deployfile/schemas'", () => {
  it("exports the event and plan schemas by package name", async () => {
    const dir = await installedProject();
    const { stdout, loaded } = runInProject(
      dir,
      "const { DeployEvent, PlanDocumentSchema, EVENT_VERSION } = await import('deployfile/schemas');\n" +
        "const event = DeployEvent.parse({ v: EVENT_VERSION, runId: 'r', ts: 't', type: 'log', site: null, level: 'info', message: 'hi' });\n" +
        "console.log(event.type, PlanDocumentSchema.safeParse({}).success);",
    );
    expect(stdout.trim()).toBe('log false');
    expect(zodLoaded(loaded)).toBe(true);
  });

  it("is the only entry point that loads zod: 'deployfile' and 'deployfile/tasks' do not", async () => {
    const dir = await installedProject();
    const { stdout, loaded } = runInProject(dir, "const d = await import('deployfile'); const t = await import('deployfile/tasks'); console.log(typeof d.defineDeployfile, typeof t.djangoTasks);");
    expect(stdout.trim()).toBe('function function');
    expect(zodLoaded(loaded)).toBe(false);
  });
});
