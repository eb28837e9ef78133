import { DeployfileError } from '../core/errors.ts';
import { resolveDeployfile, type LoadedDeployfile } from './load.ts';
import { DeployfileSchema, formatIssues } from './schema.ts';

/** Validate a deployfile's default export; errors name the file and every bad path. */
export function validateDeployfile(exported: unknown, file: string): LoadedDeployfile {
  if (exported === undefined || exported === null || (typeof exported === 'object' && Object.keys(exported).length === 0)) {
    throw new DeployfileError(`${file}: has no default export. End it with: export default defineDeployfile({ sites, tasks })`, file);
  }
  const parsed = DeployfileSchema.safeParse(exported, { reportInput: true });
  if (!parsed.success) {
    const lines = formatIssues(parsed.error.issues);
    throw new DeployfileError(`${file}: invalid deployfile\n${lines.map((line) => `  ${line}`).join('\n')}`, file);
  }
  return resolveDeployfile(parsed.data, file);
}
