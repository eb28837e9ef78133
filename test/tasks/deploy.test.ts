import { describe, expect, it } from 'vitest';
import { validateDeployfile } from '../../src/config/validate.ts';
import { defineDeployfile, task } from '../../src/index.ts';
import { deploy, DEPLOY_STEPS, djangoTasks, type DjangoVars } from '../../tasks/index.ts';
import { scriptedContext } from '../helpers/task-context.ts';

describe('deploy', () => {
  it('invokes the seed recipe by name, in order', async () => {
    const c = scriptedContext();
    await deploy().run(c);
    expect(c.recorder.invoked).toEqual(['test', 'push', 'fetch', 'installRequirements', 'pull', 'collectstatic', 'touchVassalIni']);
    expect(c.recorder.commands).toEqual([]);
  });

  it('is a per-site task', () => {
    expect(deploy().once).toBeFalsy();
  });

  it('takes custom steps, e.g. a migrate step before the reload', async () => {
    const steps = [...DEPLOY_STEPS.slice(0, 6), 'migrate', 'touchVassalIni'];
    const c = scriptedContext();
    await deploy({ steps }).run(c);
    expect(c.recorder.invoked).toEqual(steps);
    expect(deploy({ steps }).description).toBe(`Deploy: ${steps.join(', ')}`);
  });
});

describe('djangoTasks', () => {
  it('gives every built-in under the name deploy invokes it by, each described', () => {
    const tasks = djangoTasks();
    expect(Object.keys(tasks).sort()).toEqual(
      ['activateRelease', 'buildRelease', 'collectstatic', 'copyProductionSettings', 'deploy', 'doctor', 'fetch', 'plan', 'installRequirements', 'provision', 'pull', 'push', 'releases', 'rollback', 'test', 'touchVassalIni', 'updateRequirements'].sort(),
    );
    for (const step of DEPLOY_STEPS) expect(tasks).toHaveProperty(step);
    for (const [name, definition] of Object.entries(tasks)) expect(definition.description, name).toBeTruthy();
    const once = Object.entries(tasks).filter(([, d]) => d.once).map(([name]) => name);
    // test and push are per-site tasks that run their local work once per working copy (c.runOnce).
    expect(once.sort()).toEqual(['updateRequirements']);
  });

  it('passes one options object to every task', async () => {
    const tasks = djangoTasks({ apps: ['pages'], codeDir: '/srv/{site}', settings: 'example_site' });
    const local = scriptedContext({ site: null });
    await tasks.test.run(local);
    expect(local.recorder.lines).toEqual(['./manage.py test pages']);
    const remote = scriptedContext();
    await tasks.copyProductionSettings.run(remote);
    expect(remote.recorder.lines).toEqual(['cd /srv/alleged && cp example_site/settings_production.py example_site/settings.py']);
  });

  it('spreads into a typed deployfile beside custom tasks', () => {
    const config = defineDeployfile<DjangoVars>({
      sites: { alleged: { host: 'web1', vars: { settings: 'alleged_site', healthUrl: 'http://127.0.0.1:8081/' } } },
      tasks: {
        ...djangoTasks({ apps: ['pages'] }),
        migrate: task('Apply migrations', async (c) => {
          await c.cd('/home/alleged/Sites/alleged').run`./manage.py migrate --noinput`;
        }),
      },
    });
    // What the loader makes of it: the built-ins and the custom task side by side, the typed vars kept.
    const loaded = validateDeployfile(config, '/work/shop/deployfile.ts');
    expect(Object.keys(loaded.tasks)).toEqual([...Object.keys(djangoTasks()), 'migrate']);
    expect(loaded.tasks.migrate?.description).toBe('Apply migrations');
    expect(loaded.sites[0]?.vars).toEqual({ settings: 'alleged_site', healthUrl: 'http://127.0.0.1:8081/' });
  });
});
