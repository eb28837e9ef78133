// What the doctor task does (see ./index.ts for the task itself): gather the
// facts on the server, judge them (./checks.ts), one check event per verdict.
import { sh, type Context, type Result, type ShellCommand } from '../../src/index.ts';
import { resolveSite, shellPath, type SiteOptions } from '../options.ts';
import { lastJson, parseVassalIni } from '../uwsgi.ts';
import { evaluate, type DoctorInput } from './checks.ts';
import { DoctorFailedError } from './index.ts';
import { DOCTOR_SCRIPT, type AdminFacts, type AdminFactsSpec, type SiteFacts, type SiteFactsSpec } from './facts.ts';

/**
 * `c.site.vars[SITE_USER]`: the site's own user when `deploy doctor` reaches
 * the site through its admin account (src/config/admin.ts's SITE_USER_VAR;
 * the task library only imports the public API, so the name is repeated).
 */
const SITE_USER = 'siteUser';

/** What {@link doctor} does on one site; loaded when the task first runs (see ./index.ts). */
export async function runDoctor(c: Context, options: SiteOptions): Promise<void> {
  const siteUser = typeof c.site.vars[SITE_USER] === 'string' ? (c.site.vars[SITE_USER] as string) : c.site.user;
  const viaAdmin = siteUser !== c.site.user;
  const site = resolveSite({ ...c.site, user: siteUser }, options);
  // The scripts bound their own commands (pip check 60s, git ls-remote 20s); this only catches a hung connection.
  const quiet = { quiet: true, warn: true, timeout: '3m' } as const;
  const root = c.cd('/');
  // The site's own checks run as the site user: what uWSGI runs the app as.
  const asSite = (command: ShellCommand, opts: { stdin?: string; label?: string } = {}): Promise<Result> =>
    viaAdmin ? root.sudo(command, { ...quiet, ...opts, user: siteUser }) : root.run(command, { ...quiet, ...opts });
  const asAdmin = (command: ShellCommand, opts: { stdin?: string; label?: string } = {}): Promise<Result> =>
    viaAdmin ? root.sudo(command, { ...quiet, ...opts }) : root.run(command, { ...quiet, ...opts });

  // The checks below judge the emperor's stack (a vassal ini, its socket, nginx's uwsgi_pass): say so
  // for an app server of vars.app rather than fail it for lacking a vassal. deploy's reload still verifies it.
  const app = c.site.vars.app as { program?: unknown } | undefined;
  if (app) {
    c.check({
      name: 'app server',
      status: 'warn',
      detail: `${String(app.program)} (vars.app) is not a uWSGI vassal: doctor's checks are written for the emperor's stack and were not run`,
      fix: 'deploy run deploy checks its reload (processes, socket or healthUrl) and explains a failed load; doctor for other app servers is not built yet',
    });
    c.report('doctor: not run (vars.app: not a uWSGI vassal)');
    return;
  }
  const iniRead = await asSite(sh`cat ${shellPath(site.vassal)}`);
  if (c.dryRun) {
    c.log(`would gather facts about ${site.site} as ${siteUser}${viaAdmin ? ` and as root through ${c.site.user}` : ''}, then judge them`);
    return;
  }
  const ini: DoctorInput['ini'] = iniRead.ok ? { text: iniRead.stdout } : { error: iniRead.stderr.trim().split('\n').at(-1) || `exit code ${iniRead.exitCode}` };
  const info = 'text' in ini ? parseVassalIni(ini.text, site.vassal) : undefined;
  const unixSocket = info?.socket?.protocol === 'uwsgi' && info.socket.address.includes('/') ? info.socket.address : undefined;
  const siteSpec: SiteFactsSpec = {
    ini: site.vassal,
    codeDir: site.codeDir,
    virtualenv: site.virtualenv,
    settings: site.settings,
    requirements: site.requirements,
    load: info?.load,
    socket: unixSocket,
    home: info?.load?.home,
  };
  const adminSpec: AdminFactsSpec = { socket: unixSocket };
  // Both at once over the one connection: the verdict waits for the slower, not the sum.
  const [siteRun, adminRun] = await Promise.all([
    asSite(sh`python3 - site --spec ${JSON.stringify(siteSpec)}`, { stdin: DOCTOR_SCRIPT, label: `python3 - site: gather facts as ${siteUser}` }),
    asAdmin(sh`python3 - admin --spec ${JSON.stringify(adminSpec)}`, { stdin: DOCTOR_SCRIPT, label: `python3 - admin: nginx -T and the socket${viaAdmin ? ' as root' : ` as ${siteUser}`}` }),
  ]);
  const facts = lastJson<SiteFacts>(siteRun.stdout);
  const admin = lastJson<AdminFacts>(adminRun.stdout);
  if (!facts) {
    const why = (siteRun.stderr || siteRun.stdout).trim().split('\n').slice(-3).join(' | ') || `exit code ${siteRun.exitCode}`;
    c.check({ name: 'facts', status: 'fail', detail: `could not gather facts as ${siteUser}: ${why}`, fix: viaAdmin ? `check that ${c.site.user} may run sudo -u ${siteUser} without a password (or give DEPLOY_SUDO_PASSWORD), and that python3 is installed` : 'install python3 on the server' });
  }
  if (!admin) c.warn(`could not inspect nginx: ${(adminRun.stderr || adminRun.stdout).trim().split('\n').at(-1) ?? ''}`);

  const checks = evaluate({ site, siteUser, ini, info, facts, admin, viaAdmin, deployCommand: `deploy run deploy -s ${c.site.name}` });
  for (const check of checks) c.check(check);
  const failed = checks.filter((check) => check.status === 'fail');
  if (!facts) failed.push({ name: 'facts', status: 'fail', detail: '' });
  const warned = checks.filter((check) => check.status === 'warn').length;
  c.report(`doctor: ${checks.filter((check) => check.status === 'pass').length} pass, ${warned} warn, ${failed.length} fail${viaAdmin ? ` (through ${c.site.user})` : ''}`);
  if (failed.length > 0) throw new DoctorFailedError(c.site.name, failed);
}
