// The deployfile every deployfile case of the benchmark runs (bench/run.ts
// points -f at it). Sites come from the JSON file named by
// DEPLOYFILE_BENCH_SITES, which run.ts writes for the lab it set up.
//
//   percmd   BENCH_N sequential `true` in one task (cases 1, 3 and 8)
//   recipe   the remote part of the deploy recipe, every step always (case 2)
//   deploy   the built-in deploy task (test, push, pull, ... touchVassalIni; case 4);
//            with BENCH_VERIFY=0, touchVassalIni only touches (verify: false),
//            which is all the seed recipe promises. For a site listed in
//            `layouts` as 'releases' (case 7), the releases deploy instead
//            (test, push, buildRelease, activateRelease)
//
// The same steps, as the same shell lines, are in bench/peers/ for OpenSSH,
// Fabric and Ansible.
import { readFileSync } from 'node:fs';
import { defineDeployfile, task, type SiteConfig } from 'deployfile';
import { djangoTasks } from 'deployfile/tasks';

interface BenchSites {
  host: string;
  port: number;
  identityFile: string;
  sites: string[];
  /** The operator's checkout that `test` and `push` use (the lab origin's work clone). */
  localDir: string;
  /** Sites deployed in another layout than in place (case 7's own sites). */
  layouts?: Record<string, 'in-place' | 'releases'>;
  /** Bare site users for the growth case (case 8): only `percmd` runs on them. */
  growth?: string[];
}

const file = process.env.DEPLOYFILE_BENCH_SITES;
if (!file) throw new Error('DEPLOYFILE_BENCH_SITES is not set: run the benchmark with npm run bench');
const bench = JSON.parse(readFileSync(file, 'utf8')) as BenchSites;
const n = Number(process.env.BENCH_N ?? '200');

const sites: Record<string, SiteConfig> = {};
// The bench's uWSGI emperor watches its own vassal dir (see bench/lab.ts), not /etc/uwsgi/emperor.d.
const vassal = (site: string): string => `/etc/uwsgi/deployfile-bench.d/${site}.ini`;
for (const name of [...bench.sites, ...Object.keys(bench.layouts ?? {}), ...(bench.growth ?? [])]) {
  sites[name] = { host: bench.host, port: bench.port, identityFile: bench.identityFile, vars: { settings: 'example_site', vassal: vassal(name), layout: bench.layouts?.[name] ?? 'in-place' } };
}

export default defineDeployfile({
  sites,
  tasks: {
    percmd: task(`${n} sequential true`, async (c) => {
      for (let i = 0; i < n; i++) await c.run('true');
    }),

    recipe: task('The remote part of the recipe, every step', async (c) => {
      const site = c.site.name;
      const code = c.cd(`/home/${site}/Sites/${site}`);
      const venv = code.prefix(`. /home/${site}/virtualenvs/${site}/bin/activate`);
      await code.run('mkdir -p static caches/django');
      await code.run('git pull --ff-only');
      await code.run('cp example_site/settings_production.py example_site/settings.py');
      await venv.run('pip install -q --no-index --disable-pip-version-check -r REQUIREMENTS');
      await venv.run('./manage.py collectstatic --noinput');
      await c.run(`touch ${vassal(site)}`);
    }),

    ...djangoTasks({ apps: ['pages'], localDir: bench.localDir, verify: process.env.BENCH_VERIFY !== '0' }),
  },
});
