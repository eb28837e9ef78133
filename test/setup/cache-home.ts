import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * deployfile remembers valid deployfiles under $XDG_CACHE_HOME (see
 * src/config/validated-cache.ts). Every test, and every `deploy` a test
 * starts, uses a cache of this run's own, removed at the end, so tests
 * neither read the developer's ~/.cache nor leave entries in it.
 */
export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'deployfile-test-cache-'));
  process.env.XDG_CACHE_HOME = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
