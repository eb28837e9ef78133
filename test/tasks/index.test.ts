// The task library as a deployfile imports it (the built package, by name):
// every deployfile loads it at start-up, so the tasks a run rarely calls
// (doctor, plan, provision) load what they do only when they first run.
import { afterAll, describe, expect, it } from 'vitest';
import { installedProject, runInProject } from '../helpers/installed-package.ts';
import { removeTempDirs } from '../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

describe("'deployfile/tasks' at start-up", () => {
  it('defines every task without loading what doctor, plan and provision do', async () => {
    const dir = await installedProject();
    const { stdout, loaded } = runInProject(dir, "const { djangoTasks } = await import('deployfile/tasks'); console.log(Object.keys(djangoTasks()).sort().join(' '));");
    expect(stdout.trim().split(' ')).toEqual(expect.arrayContaining(['deploy', 'doctor', 'plan', 'provision', 'touchVassalIni']));
    expect(loaded).toContain('dist/tasks/index.js');
    // Their definitions only (and provision's options, whose default nginx template the library exports).
    const ofTheThree = loaded.filter((url) => /^dist\/tasks\/(doctor|plan|provision)\//.test(url)).sort();
    expect(ofTheThree).toEqual(['dist/tasks/doctor/index.js', 'dist/tasks/plan/index.js', 'dist/tasks/provision/index.js', 'dist/tasks/provision/options.js']);
  });

  it('loads what a task does when it runs: doctor on a site of another app server', async () => {
    const dir = await installedProject();
    // The shortest real path through doctor: vars.app names a server it has no checks for, so it says so and runs nothing.
    const { stdout, loaded } = runInProject(
      dir,
      [
        "const { doctor } = await import('deployfile/tasks');",
        "const said = [];",
        "const site = { name: 'shop', host: 'web1', user: 'shop', vars: { app: { program: 'gunicorn' } } };",
        "const c = { site, dryRun: false, cd: () => c, check: (check) => said.push(`${check.status}: ${check.detail}`), report: (text) => said.push(text) };",
        'await doctor().run(c);',
        "console.log(said.join('\\n'));",
      ].join('\n'),
    );
    expect(stdout).toContain('warn: gunicorn (vars.app) is not a uWSGI vassal');
    expect(stdout).toContain('doctor: not run (vars.app: not a uWSGI vassal)');
    expect(loaded).toContain('dist/tasks/doctor/run.js');
    expect(loaded).not.toContain('dist/tasks/provision/run.js');
  });
});
