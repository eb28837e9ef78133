// What the provision tasks do (see ./index.ts for the tasks themselves):
// inspect, plan, ask, apply through the admin account; then the check
// through nginx.
import { execFileSync } from 'node:child_process';
import { sh, type Context } from '../../src/index.ts';
import { resolveSite } from '../options.ts';
import { parseVassalIni } from '../uwsgi.ts';
import { applyPlan, asAdmin } from './apply.ts';
import { checkSite, type SiteCheck } from './check.ts';
import { INSPECT_SCRIPT, parseFacts, type Facts, type InspectRequest } from './inspect.ts';
import { PROVISION_STATE, type ProvisionState } from './index.ts';
import { defaultNginxTemplate, localFacts, provisionSettings, type ProvisionOptions, type ProvisionSettings, type ProvisionVars } from './options.ts';
import { inspectPaths, planSite, renderPlan, socketDirOf, type Plan } from './plan.ts';

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

/** What {@link provision} does on one site; loaded when the task first runs (see ./index.ts). */
export async function runProvision(c: Context, options: ProvisionOptions): Promise<void> {
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
}

/** What {@link provisionCheck} does on one site. */
export async function runProvisionCheck(c: Context): Promise<void> {
  const check = stateOf(c)?.sites.get(c.site.name)?.check;
  if (!check) return c.abort('provisionCheck runs after provision, in deploy provision');
  const outcome = await checkSite(c, check, CHECK_SECONDS);
  if (!outcome.ok) c.abort(`${c.site.name} does not answer through nginx: ${check.url} (Host: ${check.host}) gave ${outcome.answer} for ${outcome.seconds}s`);
  c.log(`${c.site.name} answers ${outcome.answer} through nginx (${check.url}, Host: ${check.host})`);
  c.report(`answers ${outcome.answer} through nginx`);
}
