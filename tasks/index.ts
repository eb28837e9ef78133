/**
 * deployfile's built-in tasks for a Django site served by a uWSGI emperor,
 * one Unix user per site. Each export is a factory: call it with options,
 * get a task. `djangoTasks()` gives the whole set under their usual names.
 *
 * @example
 * import { defineDeployfile, task } from 'deployfile';
 * import { djangoTasks } from 'deployfile/tasks';
 *
 * export default defineDeployfile({
 *   sites: { alleged: { host: 'web1.example.com', vars: { settings: 'alleged_site' } } },
 *   tasks: { ...djangoTasks({ apps: ['pages'] }), migrate: task('Migrate', async (c) => { ... }) },
 * });
 */
import type { TaskDefinition } from '../src/index.ts';
import { collectstatic, type CollectstaticOptions } from './collectstatic.ts';
import { fetch } from './fetch.ts';
import { activateRelease } from './releases/activate.ts';
import { buildRelease } from './releases/build.ts';
import type { ReleaseOptions } from './releases/layout.ts';
import { releases } from './releases/list.ts';
import { rollback } from './releases/rollback.ts';
import { copyProductionSettings } from './copy-production-settings.ts';
import { deploy, type DeployOptions } from './deploy.ts';
import { doctor } from './doctor/index.ts';
import { installRequirements, type InstallRequirementsOptions } from './install-requirements.ts';
import { pull } from './pull.ts';
import { push, type PushOptions } from './push.ts';
import { test, type TestOptions } from './test.ts';
import { touchVassalIni, type TouchVassalIniOptions } from './touch-vassal-ini.ts';
import { updateRequirements, type UpdateRequirementsOptions } from './update-requirements.ts';
import { provision } from './provision/index.ts';
import { plan } from './plan/index.ts';
import type { ProvisionOptions } from './provision/options.ts';

export { collectstatic, DEFAULT_SITE_DIRS, type CollectstaticOptions } from './collectstatic.ts';
export { fetch, fetchedFor, type Fetched } from './fetch.ts';
export { copyProductionSettings } from './copy-production-settings.ts';
export { deploy, DEPLOY_STEPS, RELEASE_STEPS, type DeployOptions } from './deploy.ts';
export { doctor, DoctorFailedError } from './doctor/index.ts';
export { activateRelease } from './releases/activate.ts';
export { buildRelease } from './releases/build.ts';
export type { ReleaseOptions } from './releases/layout.ts';
export { releases } from './releases/list.ts';
export { releaseStates, parseRecord, type ReleaseState } from './releases/record.ts';
export { rollback } from './releases/rollback.ts';
export { installRequirements, type InstallRequirementsOptions } from './install-requirements.ts';
export { displayDir, expandSite, localDirOf, resolveSite, shellPath, type DjangoVars, type PerSite, type ResolvedSiteOptions, type SiteOptions } from './options.ts';
export { pull, SWITCH_SCRIPT } from './pull.ts';
export { push, pushedFor, PUSHED_PREFIX, type Pushed, type PushOptions } from './push.ts';
export { test, type TestOptions } from './test.ts';
export { AppNotBackError, touchVassalIni, type TouchVassalIniOptions } from './touch-vassal-ini.ts';
export { planReload, ReloadRefused, RELOAD_STRATEGIES, type ReloadPlan, type ReloadStrategy } from './reload/strategy.ts';
export { type ServiceReload } from './reload/service.ts';
export { type AppServer } from './reload/app.ts';
export { updateRequirements, type UpdateRequirementsOptions } from './update-requirements.ts';
export { plan, PLAN_COMMITS_SHOWN, PLAN_RESULTS, type PlanOptions } from './plan/index.ts';
// The zod schemas themselves are in 'deployfile/schemas': importing them here would load zod on every start.
export type { PlanDocument, SitePlan } from './plan/schema.ts';
export { provision, provisionCheck, defaultNginxTemplate, PROVISION_STATE, type ProvisionOptions, type ProvisionState, type ProvisionVars } from './provision/index.ts';
export { explainReload, parseVassalIni, type ProbeOutcome, type ReloadExplanation, type VassalInfo, type VassalLoad, type VassalSocket } from './uwsgi.ts';

/**
 * Options for the whole set: the site settings every task shares, plus each
 * task's own. Names don't overlap, so one object configures them all.
 */
export interface DjangoTasksOptions
  extends InstallRequirementsOptions,
    TestOptions,
    PushOptions,
    Pick<CollectstaticOptions, 'dirs'>,
    Omit<ReleaseOptions, keyof InstallRequirementsOptions>,
    Omit<TouchVassalIniOptions, keyof InstallRequirementsOptions>,
    Omit<UpdateRequirementsOptions, 'file' | 'localDir'>,
    Omit<ProvisionOptions, keyof InstallRequirementsOptions>,
    DeployOptions {}

/** The tasks {@link djangoTasks} returns, by name. */
export type DjangoTasks = {
  test: TaskDefinition;
  push: TaskDefinition;
  fetch: TaskDefinition;
  pull: TaskDefinition;
  installRequirements: TaskDefinition;
  collectstatic: TaskDefinition;
  copyProductionSettings: TaskDefinition;
  touchVassalIni: TaskDefinition;
  updateRequirements: TaskDefinition;
  buildRelease: TaskDefinition;
  activateRelease: TaskDefinition;
  rollback: TaskDefinition;
  releases: TaskDefinition;
  doctor: TaskDefinition;
  plan: TaskDefinition;
  deploy: TaskDefinition;
  provision: TaskDefinition;
};

/**
 * Every built-in task under the name `deploy` invokes it by, configured
 * from one options object. Spread it into a deployfile's tasks and add or
 * replace your own beside it.
 *
 * @example
 * tasks: { ...djangoTasks({ apps: ['pages'], exclude: ['ipython'] }), migrate }
 */
export function djangoTasks(options: DjangoTasksOptions = {}): DjangoTasks {
  return {
    test: test(options),
    push: push(options),
    fetch: fetch(options),
    pull: pull(options),
    installRequirements: installRequirements(options),
    collectstatic: collectstatic(options),
    copyProductionSettings: copyProductionSettings(options),
    touchVassalIni: touchVassalIni(options),
    updateRequirements: updateRequirements({
      ...options,
      // REQUIREMENTS is one file in the local checkout, so only a plain name applies here.
      file: typeof options.requirements === 'string' ? options.requirements : undefined,
      localDir: typeof options.localDir === 'string' ? options.localDir : undefined,
    }),
    buildRelease: buildRelease(options),
    activateRelease: activateRelease(options),
    rollback: rollback(options),
    releases: releases(options),
    doctor: doctor(options),
    plan: plan(options),
    deploy: deploy(options),
    // What deploy provision runs through the admin account, configured by the same options.
    provision: provision(options),
  };
}
