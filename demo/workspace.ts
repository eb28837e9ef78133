/**
 * The demo's throwaway world, all under one temp dir: a git origin, the
 * operator's working clone, and the site user's home as a first deploy would
 * have left it. Paths follow the task library's defaults (`~/Sites/{site}`,
 * `~/virtualenvs/{site}`) so the deploy runs the same commands as anywhere.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commitAll, git } from './git.ts';

/** The site's name, its Unix user on the embedded server, and its settings' home. */
export const DEMO_SITE = 'demo';

/** Every path of the demo; see {@link createWorkspace}. */
export interface Workspace {
  /** The temp dir holding everything; removing it removes the demo. */
  root: string;
  /** Bare repository standing in for GitHub and friends. */
  origin: string;
  /** The operator's checkout, tracking `origin/main`: what `test` and `push` run in. */
  workClone: string;
  /** The site user's home on the "server". */
  home: string;
  codeDir: string;
  virtualenv: string;
  vassal: string;
  socket: string;
  uwsgiLog: string;
  /** Stands in for the operator's `~` in the SSH settings, so the demo never reads the real `~/.ssh`. */
  operatorHome: string;
  knownHosts: string;
  /** The commit the demo made in the working clone: what the deploy must end up serving. */
  newRevision: string;
  /** The revision the site had before the deploy. */
  oldRevision: string;
}

/**
 * `examples/django-site` of this package: demo/ under vitest and jiti,
 * dist/demo/ when built, so try both depths.
 */
export function exampleSiteDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['..', '../..']) {
    const dir = resolve(here, up, 'examples', 'django-site');
    if (existsSync(join(dir, 'manage.py'))) return dir;
  }
  throw new Error(`deploy demo: cannot find examples/django-site next to ${here}; is the package complete?`);
}

// npm leaves .gitignore files out of published packages, so the example may
// arrive without one; without it collectstatic's output and __pycache__ would
// show up as untracked files in the working clone.
const GITIGNORE = '/static/\n/caches/\n__pycache__/\n*.pyc\n';

/**
 * Leaves out what running the example in place (as its README suggests) may
 * have written next to it: bytecode, collectstatic's output, the cache.
 */
function isSource(path: string): boolean {
  const parts = path.split(sep);
  if (parts.includes('__pycache__') || path.endsWith('.pyc')) return false;
  return !(parts.length >= 1 && (parts[0] === 'static' || parts[0] === 'caches'));
}

/** The visible change the demo ships: a new line in the page's template. */
const TEMPLATE = 'pages/templates/pages/index.html';

/**
 * Builds the demo's directories; see {@link Workspace}. The vassal ini is
 * what a uWSGI emperor would read: an http socket, so a plain HTTP request
 * (the stand-in's, touchVassalIni's probe, curl) can reach the app.
 */
export async function createWorkspace(): Promise<Workspace> {
  const root = await mkdtemp(join(tmpdir(), 'deployfile-demo-'));
  try {
    const home = join(root, 'home', DEMO_SITE);
    const w: Omit<Workspace, 'newRevision' | 'oldRevision'> = {
      root,
      origin: join(root, 'origin.git'),
      workClone: join(root, 'work'),
      home,
      codeDir: join(home, 'Sites', DEMO_SITE),
      virtualenv: join(home, 'virtualenvs', DEMO_SITE),
      vassal: join(home, 'vassal', `${DEMO_SITE}.ini`),
      socket: join(home, 'run', `${DEMO_SITE}.sock`),
      uwsgiLog: join(home, 'log', `${DEMO_SITE}.log`),
      operatorHome: join(root, 'operator'),
      knownHosts: join(root, 'operator', '.ssh', 'known_hosts'),
    };

    // The project as its developer has it: committed, pushed, tracking origin/main.
    const example = exampleSiteDir();
    await cp(example, w.workClone, { recursive: true, filter: (src) => isSource(relative(example, src)) });
    if (!existsSync(join(w.workClone, '.gitignore'))) await writeFile(join(w.workClone, '.gitignore'), GITIGNORE);
    await git(root, 'init', '-q', '--bare', '-b', 'main', w.origin);
    await git(w.workClone, 'init', '-q', '-b', 'main');
    const oldRevision = await commitAll(w.workClone, 'Example site from deployfile');
    await git(w.workClone, 'remote', 'add', 'origin', w.origin);
    await git(w.workClone, 'push', '-q', '-u', 'origin', 'main');

    // The server after its first deploy: the code cloned, the log and socket dirs there.
    await mkdir(dirname(w.codeDir), { recursive: true });
    await git(root, 'clone', '-q', w.origin, w.codeDir);
    for (const dir of [dirname(w.vassal), dirname(w.socket), dirname(w.uwsgiLog), dirname(w.knownHosts)]) await mkdir(dir, { recursive: true });
    await writeFile(
      w.vassal,
      [
        '[uwsgi]',
        '; Read by the demo\'s stand-in emperor (demo/emperor.ts), which honours chdir,',
        '; http-socket and logto; the other lines are what uWSGI itself would need.',
        `chdir = ${w.codeDir}`,
        `virtualenv = ${w.virtualenv}`,
        'module = example_site.wsgi:application',
        `http-socket = ${w.socket}`,
        `logto = ${w.uwsgiLog}`,
        '',
      ].join('\n'),
    );

    // What the operator changed since: a line anyone can see in the page, committed, not yet pushed.
    const template = join(w.workClone, TEMPLATE);
    const page = await readFile(template, 'utf8');
    const line = `  <p>Shipped by <code>deploy demo</code> at ${new Date().toISOString()}.</p>\n`;
    await writeFile(template, page.replace('</body>', `${line}</body>`));
    const newRevision = await commitAll(w.workClone, 'Say on the page that deploy demo shipped it');
    return { ...w, oldRevision, newRevision };
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
}

/** Removes everything the demo made. */
export function removeWorkspace(w: Pick<Workspace, 'root'>): Promise<void> {
  return rm(w.root, { recursive: true, force: true });
}
