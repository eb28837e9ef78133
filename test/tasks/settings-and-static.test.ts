import { describe, expect, it } from 'vitest';
import { collectstatic } from '../../tasks/collectstatic.ts';
import { copyProductionSettings } from '../../tasks/copy-production-settings.ts';
import { scriptedContext } from '../helpers/task-context.ts';

describe('copyProductionSettings', () => {
  it('copies {settings}/settings_production.py over settings.py in the code dir', async () => {
    const c = scriptedContext();
    await copyProductionSettings().run(c);
    expect(c.recorder.lines).toEqual(['cd /home/alleged/Sites/alleged && cp alleged/settings_production.py alleged/settings.py']);
  });

  it('uses the settings package given as an option or var', async () => {
    const c = scriptedContext({ site: { name: 'alleged', vars: { settings: 'example_site' } } });
    await copyProductionSettings({ settings: 'ignored_by_the_var' }).run(c);
    expect(c.recorder.lines).toEqual(['cd /home/alleged/Sites/alleged && cp example_site/settings_production.py example_site/settings.py']);
  });
});

describe('collectstatic', () => {
  it('makes static/ and caches/django in the home directory, as the seed recipe does, then collects in the virtualenv', async () => {
    const c = scriptedContext();
    await collectstatic().run(c);
    expect(c.recorder.lines).toEqual([
      'mkdir -p static caches/django',
      'cd /home/alleged/Sites/alleged && . /home/alleged/virtualenvs/alleged/bin/activate && ./manage.py collectstatic --noinput',
    ]);
  });

  it('makes the directories it is given instead, relative to home or absolute, quoted', async () => {
    const c = scriptedContext();
    await collectstatic({ dirs: (site) => ['public/static', `/srv/cache dir/${site.name}`] }).run(c);
    expect(c.recorder.lines[0]).toBe("mkdir -p public/static '/srv/cache dir/alleged'");
  });
});
