import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkImports, declaredExports, entrySource, importedNames } from './imports.ts';
import { DeployfileError } from '../core/errors.ts';
import { normalizeTask, type TaskDefinition } from './define.ts';
import type { ValidDeployfile } from './schema.ts';
import { knownValid, rememberValid, validationKey } from './validated-cache.ts';

/** A site with its defaults applied: `user` is the site's name unless set. */
export interface ResolvedSite {
  name: string;
  host: string;
  user: string;
  /** Undefined when the deployfile leaves it to ~/.ssh/config (default 22). */
  port: number | undefined;
  identityFile: string | undefined;
  forwardAgent: boolean | undefined;
  /** ProxyJump as given in the deployfile (wins over ~/.ssh/config). */
  proxyJump?: string;
  /** `false` only when the deployfile turns host key checking off for this site. */
  hostKeyChecking?: false;
  /** `false` when the deployfile wants a session per command (no shared shell). */
  sharedShell?: false;
  /**
   * True when `user` is only the site name (the deployfile set none), so
   * ~/.ssh/config's User for the host may take its place.
   */
  userIsDefault?: boolean;
  /**
   * The admin account on the site's host (`root`, or a user with sudo) that
   * `deploy provision` and `deploy doctor` use for what the site user may
   * not do: the site's `admin`, else the deployfile's `admins[host]`.
   */
  admin?: string;
  vars: Record<string, unknown>;
}

export interface LoadedDeployfile {
  file: string;
  sites: ResolvedSite[];
  groups: Record<string, string[]>;
  tasks: Record<string, TaskDefinition>;
}

export const DEPLOYFILE_NAMES = ['deployfile.ts', 'deployfile.mts', 'deployfile.js', 'deployfile.mjs'];

/** `-f FILE`, else `./deployfile.ts`, else the nearest one in a parent directory. */
export function findDeployfile(explicit: string | undefined, cwd = process.cwd()): string {
  if (explicit) {
    const file = resolve(cwd, explicit);
    if (!existsSync(file)) throw new DeployfileError(`${explicit}: no such file`, file);
    return file;
  }
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    for (const name of DEPLOYFILE_NAMES) {
      const file = join(dir, name);
      if (existsSync(file)) return file;
    }
    if (dirname(dir) === dir) break;
  }
  throw new DeployfileError(
    `no deployfile.ts in ${cwd} or any parent directory. Create one (see deployfile.example.ts in the deployfile package) or pass -f FILE.`,
  );
}

/**
 * Where `import 'deployfile'` in a user's file goes: always this running
 * copy, so the deployfile and the CLI share one engine and one set of types.
 */
function selfAliases(): Record<string, string> {
  const here = fileURLToPath(import.meta.url);
  const ext = extname(here); // .ts under tests, .js when built
  const srcRoot = resolve(dirname(here), '..');
  return {
    'deployfile/tasks': resolve(srcRoot, '..', 'tasks', `index${ext}`),
    'deployfile/schemas': resolve(srcRoot, `schemas${ext}`),
    deployfile: resolve(srcRoot, `index${ext}`),
  };
}

/** checkImports for one deployfile, against the entry points `aliases` resolve to. */
async function checkDeployfileImports(file: string, aliases: Record<string, string>, load: (path: string) => Promise<unknown>): Promise<void> {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch {
    return; // jiti's own error says why it cannot be read
  }
  const wanted = new Set(importedNames(source).map((i) => i.from));
  if (wanted.size === 0) return;
  const entries: Record<string, { runtime: string[]; declared: Set<string> }> = {};
  for (const [specifier, path] of Object.entries(aliases)) {
    if (!wanted.has(specifier)) continue;
    const runtime = Object.keys((await load(path)) as object);
    entries[specifier] = { runtime, declared: declaredExports(entrySource(path)) };
  }
  checkImports(file, source, entries);
}

/** Import a deployfile.ts at run time (no build step) and validate it. */
export async function loadDeployfile(file: string): Promise<LoadedDeployfile> {
  // require, not import: jiti is CommonJS, and an ESM import of it makes Node
  // scan its 190 KB bundle for export names first (about 40 ms of each start).
  const { createJiti } = createRequire(import.meta.url)('jiti') as typeof import('jiti');
  const jiti = createJiti(import.meta.url, { alias: selfAliases(), interopDefault: true, moduleCache: false });
  const aliases = selfAliases();
  await checkDeployfileImports(file, aliases, (path) => jiti.import(path));
  let module: Record<string, unknown>;
  try {
    module = (await jiti.import(file)) as Record<string, unknown>;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new DeployfileError(`${file}: could not be loaded: ${message}`, file);
  }
  if (module === null || typeof module !== 'object' || !('default' in module) || module.default === undefined) {
    const named = module && typeof module === 'object' ? Object.keys(module).filter((k) => k !== 'default' && k !== '__esModule') : [];
    throw new DeployfileError(
      `${file}: has no default export${named.length > 0 ? ` (only named ones: ${named.join(', ')})` : ''}. Write: export default defineDeployfile({ sites, tasks })`,
      file,
    );
  }
  return validateOrRemember(module.default, file);
}

/**
 * What validated a deployfile: the schema's source (beside this file, .ts
 * under tests, .js when built) and zod's version. A remembered verdict
 * holds only while both are unchanged.
 */
function schemaIdentity(): string {
  const require = createRequire(import.meta.url);
  const schema = fileURLToPath(new URL(`./schema${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
  const zod = (require('zod/package.json') as { version: string }).version;
  return `${readFileSync(schema, 'utf8')}\0zod ${zod}`;
}

/**
 * Validate with zod only the first time a deployfile exports this exact
 * value: a remembered one goes straight to {@link resolveDeployfile}, and a
 * start skips loading zod. An invalid one is never remembered, so its
 * errors are printed on every run.
 */
async function validateOrRemember(exported: unknown, file: string): Promise<LoadedDeployfile> {
  let key: string | undefined;
  try {
    key = validationKey(exported, schemaIdentity());
  } catch {
    key = undefined; // a getter that throws, an unreadable schema: validate as usual
  }
  if (key !== undefined && knownValid(key)) return resolveDeployfile(exported as ValidDeployfile, file);
  const { validateDeployfile } = await import('./validate.ts');
  const loaded = validateDeployfile(exported, file);
  if (key !== undefined) rememberValid(key);
  return loaded;
}

/** A valid deployfile with its defaults applied: each site's user, admin and vars. */
export function resolveDeployfile(config: ValidDeployfile, file: string): LoadedDeployfile {
  return {
    file,
    sites: Object.entries(config.sites).map(([name, site]) => ({
      name,
      host: site.host,
      user: site.user ?? name,
      userIsDefault: site.user === undefined,
      port: site.port,
      identityFile: site.identityFile,
      forwardAgent: site.forwardAgent,
      proxyJump: site.proxyJump,
      hostKeyChecking: site.hostKeyChecking,
      sharedShell: site.sharedShell,
      admin: site.admin ?? config.admins?.[site.host],
      vars: site.vars ?? {},
    })),
    groups: config.groups ?? {},
    tasks: Object.fromEntries(Object.entries(config.tasks).map(([name, value]) => [name, normalizeTask(value as TaskDefinition)])),
  };
}
