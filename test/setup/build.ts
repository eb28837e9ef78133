import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * CLI tests drive the real `deploy` binary, which runs the compiled dist/.
 * Type errors are `npm run typecheck`'s job (CI runs it); here only a build
 * that emitted nothing is fatal.
 */
export default function setup(): void {
  // No rm -rf first: several test runs may share this tree and its dist/.
  const build = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { encoding: 'utf8' });
  if (!existsSync('dist/src/cli/main.js')) throw new Error(`build failed:\n${build.stdout}${build.stderr}`);
}
