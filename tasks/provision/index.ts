/**
 * `deploy provision`'s tasks: `provision` sets a site up through its admin
 * account (inspect, show the plan and its diffs, ask, apply), and
 * `provisionCheck` asks the site through nginx after its first deploy.
 * The command (src/cli/provision.ts) runs them; see docs/provision.md.
 */
import { execFileSync } from 'node:child_process';
import { sh, task, type Context, type TaskDefinition } from '../../src/index.ts';
import { resolveSite } from '../options.ts';
import { parseVassalIni } from '../uwsgi.ts';
import { applyPlan, asAdmin } from './apply.ts';
import { checkSite, type SiteCheck } from './check.ts';
import { INSPECT_SCRIPT, parseFacts, type Facts, type InspectRequest } from './inspect.ts';
import { defaultNginxTemplate, localFacts, provisionSettings, type ProvisionOptions, type ProvisionSettings, type ProvisionVars } from './options.ts';
import { inspectPaths, planSite, renderPlan, socketDirOf, type Plan } from './plan.ts';

export { defaultNginxTemplate, listenPort, provisionSettings, type ProvisionOptions, type ProvisionSettings, type ProvisionVars } from './options.ts';
export { planSite, renderPlan, socketDirOf, type Plan, type Step } from './plan.ts';
export { unifiedDiff } from './diff.ts';
export { NGINX_SCRIPT, VASSAL_SCRIPT } from './nginx.ts';
export { INSPECT_SCRIPT, type Facts } from './inspect.ts';
export { CHECK_SCRIPT, type SiteCheck } from './check.ts';

/** The `c.shared` key of the {@link ProvisionState} `deploy provision` hands its passes. */
export const PROVISION_STATE = 'deployfile.provision';

/** What one site's provision found and did, for the command's next pass. */
export interface SiteProvision {
  /** The site needs its first deploy: the code was just cloned, or it does not answer through nginx. */
  deploy: boolean;
  check: SiteCheck;
  /** How many changes were applied (0: nothing to change). */
  changes: number;
}

/** Shared by the command's passes (one object, filled by the provision task). */
export interface ProvisionState {
  /**
   * How the deployfile reaches each site: its identityFile (whose `.pub` is
   * the default key to authorize) and forwardAgent (the default for cloneAs).
   */
  reach: Map<string, { identityFile?: string; forwardAgent?: boolean }>;
  sites: Map<string, SiteProvision>;
}

/** How long the check through nginx waits for an answer. */
const CHECK_SECONDS = 30;

function stateOf(c: Context): ProvisionState | undefined {
  return c.shared.get(PROVISION_STATE) as ProvisionState | undefined;
}

/**
 * A quick local question (`git remote get-url`, `ssh-add -L`): its output, or
 * undefined when it fails. Not c.local: these are lookups for defaults, not
 * work to show in the run.
 */
function ask(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim() || undefined;
  } catch {
    return undefined;
  }
}

async function inspect(c: Context, request: InspectRequest): Promise<Facts> {
  const result = await asAdmin(c).root(sh`python3 - ${JSON.stringify(request)}`, { stdin: INSPECT_SCRIPT, quiet: true, label: `inspect what exists for ${request.user} (read-only)` });
  const facts = parseFacts(result.stdout);
  if (!facts) return c.abort(`${c.site.name}: could not inspect the server (python3 is needed there): ${(result.stderr || result.stdout).trim().split('\n').slice(-5).join('\n  ') || `exit code ${result.exitCode}`}. Nothing was changed.`);
  return facts;
}

/** Inspect, then plan: what exists, and what would change. */
async function planFor(c: Context, options: ProvisionOptions, settings: ProvisionSettings): Promise<Plan> {
  const facts = await inspect(c, { user: settings.user, groups: [settings.uwsgiGroup, settings.user], paths: inspectPaths(settings) });
  const vars = (socket: string | undefined): ProvisionVars => ({
    site: settings.site,
    user: settings.user,
    codeDir: settings.codeDir,
    virtualenv: settings.virtualenv,
    settings: settings.settings,
    socket,
    serverName: settings.serverName,
    listen: settings.listen,
    vars: c.site.vars as Record<string, unknown>,
  });
  const vassal = options.vassalTemplate ? options.vassalTemplate(vars(settings.socketDir ? `${settings.socketDir}/${settings.site}.sock` : undefined)) : facts.paths.skeleton?.content;
  const socketDir = socketDirOf(settings, vassal);
  if (socketDir) {
    const more = await inspect(c, { user: settings.user, groups: [], paths: { socketDir: { path: socketDir } } });
    facts.paths.socketDir = more.paths.socketDir!;
  }
  const socket = vassal === undefined ? undefined : parseVassalIni(vassal, settings.vassal).socket?.address;
  const nginx = (options.nginxTemplate ?? defaultNginxTemplate)(vars(socket?.startsWith('/') ? socket : undefined));
  return planSite(facts, { settings, vassal, vassalSource: options.vassalTemplate ? "the deployfile's vassalTemplate" : settings.vassalSkeleton, nginx, socketDir });
}

/**
 * Set a site up on its server through its admin account, idempotently:
 * the Unix user (password `*`: key login only) with the operator's keys,
 * the clone of the origin (and git's safe.directory where ownership
 * differs), the virtualenv and the requirements, the vassal from the
 * emperor's skeleton (`site:uwsgi` 0644, written atomically), the socket
 * directory checked, the nginx server block (tested, rolled back on
 * failure, then reloaded). Prints the plan with the diffs first and asks
 * (`--yes` in CI). Takes no deploy lock and writes no history: it connects
 * as the admin, not as the site. Run by `deploy provision`, which then
 * deploys the sites that need it.
 *
 * @example
 * tasks: { ...djangoTasks(), provision: provision({ virtualenvArgs: ['--system-site-packages'] }) }
 */
export function provision(options: ProvisionOptions = {}): TaskDefinition {
  return task({
    description: 'Set the site up on its server (user, keys, code, virtualenv, vassal, nginx) through its admin account',
    lock: false,
    run: async (c) => {
      const state = stateOf(c);
      const base = resolveSite(c.site, options);
      const settings = provisionSettings(c.site, options, localFacts(base.localDir, state?.reach.get(c.site.name) ?? {}, (args) => ask('git', args), () => (process.env.SSH_AUTH_SOCK ? ask('ssh-add', ['-L']) : undefined)));
      const plan = await planFor(c, options, settings);
      c.log(renderPlan(plan, `${settings.user} on ${c.site.host}, through ${c.site.user}`));
      if (plan.problems.length > 0) {
        c.abort(`${c.site.name}: nothing was changed, because:\n${plan.problems.map((problem) => `  ${problem}`).join('\n')}`);
      }
      const check: SiteCheck = { url: settings.checkUrl, host: settings.serverName };
      const record = (deploy: boolean): void => void state?.sites.set(c.site.name, { deploy, check, changes: plan.steps.length });
      if (plan.steps.length === 0) {
        const outcome = await checkSite(c, check, 5);
        if (outcome.ok) {
          c.log(`${c.site.name}: nothing to change; it answers ${outcome.answer} through nginx (${check.url}, Host: ${check.host})`);
          c.report(`nothing to change; answers ${outcome.answer}`);
        } else {
          c.warn(`${c.site.name}: nothing to change, but it does not answer through nginx (${outcome.answer}): it gets a deploy next`);
          c.report('nothing to change; not answering: deploy next');
        }
        record(!outcome.ok);
        return;
      }
      const count = `${plan.steps.length} change${plan.steps.length === 1 ? '' : 's'}`;
      if (!(await c.confirm(`Provision ${c.site.name} on ${c.site.host}: apply the ${count} above?`, { default: false }))) {
        c.abort(`${c.site.name}: not provisioned: the plan was not accepted (without a terminal, --yes accepts it); nothing was changed`);
      }
      await applyPlan(c, plan, { test: settings.nginxTest, reload: settings.nginxReload });
      const cloned = plan.steps.some((step) => step.kind === 'clone');
      let deploy = cloned;
      if (!cloned) {
        const outcome = await checkSite(c, check, CHECK_SECONDS);
        if (!outcome.ok) c.warn(`${c.site.name} does not answer through nginx (${outcome.answer}): it gets a deploy next`);
        deploy = !outcome.ok;
      }
      c.report(`provisioned: ${count}${deploy ? '; first deploy next' : ''}`);
      record(deploy);
    },
  });
}

/**
 * After the first deploy: the site answers through nginx, asked from its
 * server with the Host of its server block. Read-only.
 */
export function provisionCheck(): TaskDefinition {
  return task({
    description: 'Check that the site answers through nginx',
    lock: false,
    run: async (c) => {
      const check = stateOf(c)?.sites.get(c.site.name)?.check;
      if (!check) return c.abort('provisionCheck runs after provision, in deploy provision');
      const outcome = await checkSite(c, check, CHECK_SECONDS);
      if (!outcome.ok) c.abort(`${c.site.name} does not answer through nginx: ${check.url} (Host: ${check.host}) gave ${outcome.answer} for ${outcome.seconds}s`);
      c.log(`${c.site.name} answers ${outcome.answer} through nginx (${check.url}, Host: ${check.host})`);
      c.report(`answers ${outcome.answer} through nginx`);
    },
  });
}
