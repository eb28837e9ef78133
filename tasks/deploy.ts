import { task, type TaskDefinition } from '../src/index.ts';
import { resolveSite, type SiteOptions } from './options.ts';

/**
 * The seed recipe, ordered so that a deploy stopped anywhere leaves what a
 * reload would load complete (old or new, never a mix): every check before
 * anything changes (`fetch`), the new requirements before the new code
 * (`installRequirements`), code and production settings in one step
 * (`pull`), then `collectstatic` and the reload. Each name must be a task of
 * the deployfile.
 */
export const DEPLOY_STEPS = ['test', 'push', 'fetch', 'installRequirements', 'pull', 'collectstatic', 'touchVassalIni'] as const;

/**
 * The deploy of a site in the releases layout: the new release is built
 * beside the live one (`buildRelease`), then switched to, reloaded and
 * verified, with the previous release put back by itself when it does not
 * serve (`activateRelease`).
 */
export const RELEASE_STEPS = ['test', 'push', 'buildRelease', 'activateRelease'] as const;

/** Options of {@link deploy}. */
export interface DeployOptions extends Pick<SiteOptions, 'layout'> {
  /** The task names to invoke, in order; default {@link DEPLOY_STEPS} (or {@link RELEASE_STEPS} for a site in the releases layout). Add your own (e.g. `migrate`). */
  steps?: readonly string[];
  /** The steps for sites in the releases layout; default {@link RELEASE_STEPS}. */
  releaseSteps?: readonly string[];
}

/**
 * The whole deploy, per site, by invoking the deployfile's tasks by name:
 * test and push (each once per local working copy, however many sites), then
 * fetch, installRequirements, pull, collectstatic, touchVassalIni.
 *
 * @example
 * // migrate after the switch to the new code, before the reload
 * tasks: { ...djangoTasks(), migrate, deploy: deploy({ steps: [...DEPLOY_STEPS.slice(0, 5), 'migrate', ...DEPLOY_STEPS.slice(5)] }) }
 */
export function deploy(options: DeployOptions = {}): TaskDefinition {
  const steps = options.steps ?? DEPLOY_STEPS;
  const releaseSteps = options.releaseSteps ?? RELEASE_STEPS;
  return task({
    description: `Deploy: ${steps.join(', ')}`,
    run: async (c) => {
      const layout = c.once ? 'in-place' : resolveSite(c.site, options).layout;
      for (const step of layout === 'releases' ? releaseSteps : steps) await c.invoke(step);
    },
  });
}
