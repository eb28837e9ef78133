// examples/custom-steps.deployfile.ts: the built-in Django tasks with two
// steps of your own beside them.
//
//   - `migrate` applies database migrations in the site's virtualenv, and
//     `deploy` runs it between collectstatic and the uWSGI reload;
//   - `status` is read-only: which revision each site runs and whether its
//     working tree is clean. It takes no deploy lock, so it can run while a
//     deploy is under way.
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
  'Show the deployed revision and any local changes on the server',
  async (c) => {
    const code = c.cd(resolveSite(c.site, options).codeDir);
    await code.run`git log -1 --format='%H %ad %s' --date=iso`;
    // Something changed by hand on the server would make the next pull fail.
    const changes = await code.run('git status --porcelain', { quiet: true });
    if (changes.stdout.trim() === '') c.log('working tree clean');
    else c.warn(`changed on the server:\n${changes.stdout.trimEnd()}`);
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
