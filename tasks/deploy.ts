import { task, type TaskDefinition } from '../src/index.ts';

/**
 * The seed recipe, ordered so that a deploy stopped anywhere leaves what a
 * reload would load complete (old or new, never a mix): every check before
 * anything changes (`fetch`), the new requirements before the new code
 * (`installRequirements`), code and production settings in one step
 * (`pull`), then `collectstatic` and the reload. Each name must be a task of
 * the deployfile.
 */
export const DEPLOY_STEPS = ['test', 'push', 'fetch', 'installRequirements', 'pull', 'collectstatic', 'touchVassalIni'] as const;

/** Options of {@link deploy}. */
export interface DeployOptions {
  /** The task names to invoke, in order; default {@link DEPLOY_STEPS}. Add your own (e.g. `migrate`). */
  steps?: readonly string[];
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
  return task({
    description: `Deploy: ${steps.join(', ')}`,
    run: async (c) => {
      for (const step of steps) await c.invoke(step);
    },
  });
}
