import { task, type TaskDefinition } from '../src/index.ts';

/** The seed recipe, in order; each name must be a task of the deployfile. */
export const DEPLOY_STEPS = ['test', 'push', 'pull', 'copyProductionSettings', 'installRequirements', 'collectstatic', 'touchVassalIni'] as const;

/** Options of {@link deploy}. */
export interface DeployOptions {
  /** The task names to invoke, in order; default {@link DEPLOY_STEPS}. Add your own (e.g. `migrate`). */
  steps?: readonly string[];
}

/**
 * The whole deploy, per site, by invoking the deployfile's tasks by name:
 * test and push (each once per run, however many sites), then pull,
 * copyProductionSettings, installRequirements, collectstatic, touchVassalIni.
 *
 * @example
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
