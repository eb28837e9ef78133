import { describe, expect, it } from 'vitest';
import { collectstatic } from '../../tasks/collectstatic.ts';
import { copyProductionSettings } from '../../tasks/copy-production-settings.ts';
import { RECORD_MARKER } from '../../tasks/static-inputs.ts';
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
  const CHECK = 'python3 - check --state /home/alleged/virtualenvs/alleged/.deployfile/static.json --settings /home/alleged/Sites/alleged/alleged';
  const COLLECT = 'cd /home/alleged/Sites/alleged && . /home/alleged/virtualenvs/alleged/bin/activate && ./manage.py collectstatic --noinput';
  const RECORD = { staticRoot: '/home/alleged/static', places: ['/home/alleged/Sites/alleged/pages/static'], otherFinders: [] };

  it('makes static/ and caches/django in the home directory, as the seed recipe does, then collects in the virtualenv', async () => {
    const c = scriptedContext();
    await collectstatic({ skipUnchanged: false }).run(c);
    expect(c.recorder.lines).toEqual(['mkdir -p static caches/django', COLLECT]);
  });

  it('makes the directories it is given instead, relative to home or absolute, quoted', async () => {
    const c = scriptedContext();
    await collectstatic({ skipUnchanged: false, dirs: (site) => ['public/static', `/srv/cache dir/${site.name}`] }).run(c);
    expect(c.recorder.lines[0]).toBe("mkdir -p public/static '/srv/cache dir/alleged'");
  });

  it('is skipped, and says so, when the static inputs are as the last collect left them: one python3 check, no Django', async () => {
    const c = scriptedContext();
    c.script('python3 - check', { stdout: JSON.stringify({ unchanged: true, staticRoot: '/home/alleged/static', files: 12 }) });
    await collectstatic().run(c);
    expect(c.recorder.lines).toEqual([CHECK]);
    expect(c.recorder.skips).toEqual(['static files unchanged since the last collect (12 files in /home/alleged/static)']);
  });

  it('collects when they changed, then asks Django where its finders read from and records them for the next deploy', async () => {
    const c = scriptedContext();
    c.script('python3 - check', { stdout: JSON.stringify({ unchanged: false, why: 'static inputs or settings changed' }) });
    c.script('./manage.py shell -c', { stdout: `0 static files copied\n${RECORD_MARKER}${JSON.stringify(RECORD)}\n` });
    await collectstatic().run(c);
    expect(c.recorder.lines.slice(0, 3)).toEqual([CHECK, 'mkdir -p static caches/django', COLLECT]);
    expect(c.recorder.lines[3]).toMatch(/^cd \/home\/alleged\/Sites\/alleged && \. \/home\/alleged\/virtualenvs\/alleged\/bin\/activate && (\{ )?\.\/manage\.py shell -c '/);
    expect(c.recorder.lines[4]).toBe(`python3 - save --state /home/alleged/virtualenvs/alleged/.deployfile/static.json --settings /home/alleged/Sites/alleged/alleged --record '${JSON.stringify(RECORD)}'`);
    expect(c.recorder.skips).toEqual([]);
    expect(c.recorder.warnings).toEqual([]);
  });

  it('records nothing when Django cannot say, and says the next deploy collects again', async () => {
    const c = scriptedContext();
    c.script('python3 - check', { stdout: JSON.stringify({ unchanged: false, why: 'no record of an earlier collect' }) });
    c.script('./manage.py shell -c', { exitCode: 1, stderr: 'CommandError: shell is not available' });
    await collectstatic().run(c);
    expect(c.recorder.lines.some((line) => line.startsWith('python3 - save'))).toBe(false);
    expect(c.recorder.warnings).toEqual(['could not record the static inputs (CommandError: shell is not available): the next deploy collects again']);
  });
});
