// examples/custom-steps.deployfile.ts: the built-in Django tasks with two
// steps of your own beside them.
//
//   - `migrate` applies database migrations in the site's virtualenv, and
//     `deploy` runs it between collectstatic and the uWSGI reload (for a
//     project with a database: examples/django-site has none);
//   - `status` is read-only: which revision each site runs and what was
//     changed by hand on the server. It takes no deploy lock, so it can run
//     while a deploy is under way.
//
//   deploy run status -f examples/custom-steps.deployfile.ts
//   deploy run deploy -f examples/custom-steps.deployfile.ts --dry-run
import { defineDeployfile, sh, task } from 'deployfile';
import { DEPLOY_STEPS, deploy, djangoTasks, resolveSite, shellPath, type DjangoVars } from 'deployfile/tasks';

// One options object for the built-ins and for our steps, so everything agrees
// on where a site lives (its code dir, virtualenv, settings package...).
const options = { apps: ['pages'], settings: 'example_site' };

const migrate = task('Apply database migrations', async (c) => {
  // resolveSite applies the same defaults and per-site `vars` as the built-ins.
  const site = resolveSite(c.site, options);
  const app = c.cd(site.codeDir).prefix(sh`. ${shellPath(site.virtualenv)}/bin/activate`);
  await app.run`./manage.py migrate --noinput`;
});

const status = task(
  'Show the deployed revision and what was changed on the server',
  async (c) => {
    const site = resolveSite(c.site, options);
    const code = c.cd(site.codeDir);
    await code.run`git log -1 --format='%H %ad %s' --date=iso`;
    // pull writes the production settings over settings.py on every deploy;
    // anything else changed by hand on the server stops the next deploy at fetch.
    const deployed = `${site.settings}/settings.py`;
    const changes = await code.run('git status --porcelain', { quiet: true });
    const byHand = changes.stdout.split('\n').filter((line) => line.trim() !== '' && line.slice(3) !== deployed);
    if (byHand.length === 0) c.log('no changes on the server besides the production settings');
    else c.warn(`changed on the server:\n${byHand.join('\n')}`);
  },
  { lock: false },
);

// The seed recipe with migrate before the reload: ..., collectstatic, migrate, touchVassalIni.
const reload = DEPLOY_STEPS.indexOf('touchVassalIni');
const steps = [...DEPLOY_STEPS.slice(0, reload), 'migrate', ...DEPLOY_STEPS.slice(reload)];

export default defineDeployfile<DjangoVars>({
  sites: {
    alleged: { host: 'web1.example.com' },
    bravo: { host: 'web1.example.com', port: 2222 },
  },
  tasks: {
    ...djangoTasks(options),
    migrate,
    status,
    // Replaces the built-in deploy; the other built-ins stay as they are.
    deploy: deploy({ steps }),
  },
});
