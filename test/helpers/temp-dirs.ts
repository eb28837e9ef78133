import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Per test file (vitest loads each file's modules afresh): the dirs it made.
const made: string[] = [];

/**
 * A new temporary directory, removed by {@link removeTempDirs}: call that in
 * the file's `afterAll`, so no run leaves its directories behind.
 *
 * @example
 * afterAll(removeTempDirs);
 * const dir = await tempDir('deployfile-load-');
 */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Remove every directory {@link tempDir} made in this file. */
export async function removeTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}
