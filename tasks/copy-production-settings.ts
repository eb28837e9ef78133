import { task, type TaskDefinition } from '../src/index.ts';
import { resolveSite, type SiteOptions } from './options.ts';

/**
 * `cp {settings}/settings_production.py {settings}/settings.py` in the code
 * dir, so the server runs with its production settings.
 *
 * @example
 * tasks: { copyProductionSettings: copyProductionSettings({ settings: 'example_site' }) }
 */
export function copyProductionSettings(options: SiteOptions = {}): TaskDefinition {
  return task({
    description: 'Use the production settings (settings_production.py -> settings.py)',
    run: async (c) => {
      const { codeDir, settings } = resolveSite(c.site, options);
      await c.cd(codeDir).run`cp ${settings}/settings_production.py ${settings}/settings.py`;
    },
  });
}
