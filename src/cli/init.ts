import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, UsageError } from '../core/errors.ts';
import { someoneAtTerminal } from '../prompts/terminal.ts';
import { reportFatal } from './report.ts';

/** What `deploy init` learns from the project directory it runs in. */
export interface ProjectFacts {
  /** The Django settings package, from manage.py's DJANGO_SETTINGS_MODULE (`alleged` for `alleged.settings`). */
  settings?: string;
  /** `git remote get-url origin`: where the servers pull from. */
  origin?: string;
  hasManagePy: boolean;
}

/** The answers `deploy init` writes a deployfile from. */
export interface InitAnswers {
  host: string;
  sites: string[];
  settings?: string;
  origin?: string;
}

const SITE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const HOST = /^[A-Za-z0-9_.:[\]-]+$/;

/**
 * Read what a Django project says about itself: the settings package from
 * manage.py (`os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alleged.settings")`)
 * and the origin remote. Nothing is guessed when a file is missing.
 */
export function readProject(dir: string): ProjectFacts {
  const managePy = join(dir, 'manage.py');
  const facts: ProjectFacts = { hasManagePy: existsSync(managePy) };
  if (facts.hasManagePy) {
    const text = readFileSync(managePy, 'utf8');
    const match = /DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([\w.]+)\.settings(?:_\w+)?['"]/.exec(text);
    if (match) facts.settings = match[1];
  }
  try {
    facts.origin = execFileSync('git', ['remote', 'get-url', 'origin'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    // not a git checkout, or no origin: said in the file written
  }
  return facts;
}

/**
 * The deployfile.ts for a project: its sites on one host, the built-in
 * Django tasks, and comments that say where each default comes from.
 *
 * @example
 * deployfileSource({ host: 'web1.example.com', sites: ['alleged'], settings: 'alleged' })
 */
export function deployfileSource(answers: InitAnswers): string {
  const { host, sites, settings, origin } = answers;
  const width = Math.max(...sites.map((s) => quoteKey(s).length));
  const siteLines = sites.map((site) => {
    // The seed layout names the settings package after the site; say it only where it differs.
    const vars = settings && settings !== site ? `, vars: { settings: ${tsString(settings)} }` : '';
    return `    ${`${quoteKey(site)}:`.padEnd(width + 1)} { host: ${tsString(host)}${vars} },`;
  });
  return `// deployfile.ts: written by \`deploy init\`. Edit freely; \`deploy list\` checks it.
//
// Each site is a Unix user on its server (site alleged = user alleged), with
// its code in ~/Sites/<site>, its virtualenv in ~/virtualenvs/<site>, and the
// uWSGI vassal /etc/uwsgi/emperor.d/<site>.ini (the defaults of djangoTasks;
// set codeDir, virtualenv, vassal, ... in a site's vars where yours differ).
//
// The servers pull from ${origin ? `origin, ${origin}` : 'the origin remote of each site\'s checkout (this directory has none yet: git remote add origin URL)'}.
//
//   npx deploy list                     the sites and tasks below
//   npx deploy run deploy --dry-run     the exact commands, nothing run
//   npx deploy run deploy               test, push, then each site: fetch, pip, switch, collectstatic, reload
import { defineDeployfile } from 'deployfile';
import { djangoTasks, type DjangoVars } from 'deployfile/tasks';

export default defineDeployfile<DjangoVars>({
  sites: {
${siteLines.join('\n')}
  },
  tasks: {
    // test, push, fetch, installRequirements, pull, collectstatic, touchVassalIni, deploy, ...
    ...djangoTasks(),
  },
});
`;
}

function tsString(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

function quoteKey(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? name : tsString(name);
}

/**
 * A tsconfig.json that lets the editor and `tsc` check deployfile.ts
 * against the installed package's types, whatever the project's own
 * module setup (a Django project often has no package.json "type"):
 * bundler resolution reads the package's `exports` without asking for
 * file extensions or ES module markers.
 */
export const TSCONFIG = `${JSON.stringify(
  {
    compilerOptions: { target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler', strict: true, noEmit: true, skipLibCheck: true },
    include: ['deployfile.ts'],
  },
  null,
  2,
)}\n`;

export interface InitFlags {
  host?: string;
  site?: string;
  settings?: string;
  force?: boolean;
}

/** Check the answers, whoever gave them; throws a UsageError that says what to pass. */
export function checkAnswers(answers: InitAnswers): InitAnswers {
  if (!HOST.test(answers.host)) throw new UsageError(`--host: "${answers.host}" is not a host name; give the server's name or address, e.g. --host web1.example.com`);
  if (answers.sites.length === 0) throw new UsageError('--site: no site names; give one or more, comma-separated, e.g. --site alleged,shop');
  for (const site of answers.sites) {
    if (!SITE_NAME.test(site)) throw new UsageError(`--site: "${site}" cannot be a site name (it is also the Unix user): use letters, digits, _ . - only`);
  }
  if (answers.settings !== undefined && !/^[A-Za-z_]\w*(\.\w+)*$/.test(answers.settings)) {
    throw new UsageError(`--settings: "${answers.settings}" is not a Python package name`);
  }
  return answers;
}

const split = (list: string): string[] =>
  list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * `deploy init`: write deployfile.ts (and tsconfig.json when there is none)
 * for the Django project in `dir`, then print the next commands. Asks for
 * the host and the sites on a TTY; elsewhere (CI, scripts) they come from
 * --host and --site. Never overwrites a deployfile.ts without --force.
 */
export async function initCommand(
  flags: InitFlags,
  dir: string = process.cwd(),
  out: NodeJS.WritableStream = process.stdout,
  ask: ((question: string, defaultAnswer?: string) => Promise<string>) | undefined = someoneAtTerminal(process.stdout) ? askLine : undefined,
): Promise<number> {
  try {
    const target = join(dir, 'deployfile.ts');
    if (existsSync(target) && !flags.force) {
      throw new UsageError(`${target} already exists; edit it, or run deploy init --force to write a new one over it`);
    }
    const facts = readProject(dir);
    if (!facts.hasManagePy) out.write(`deploy init: no manage.py in ${dir}; writing a deployfile anyway (run deploy init in your Django project's directory to have its settings package read)\n`);
    const settings = flags.settings ?? facts.settings;
    let host = flags.host;
    let sites = flags.site !== undefined ? split(flags.site) : undefined;
    if (host === undefined) {
      if (!ask) throw new UsageError('no --host, and nobody at a terminal to ask: pass --host SERVER (and --site NAMES, default the settings package)');
      host = (await ask('Server (host name, or a Host of your ~/.ssh/config):')).trim();
    }
    if (sites === undefined) {
      const suggested = settings ?? '';
      sites = ask ? split(await ask('Sites on it, comma-separated (each is a Unix user there):', suggested)) : suggested ? [suggested] : [];
      if (sites.length === 0 && !ask) throw new UsageError('no --site, and no settings package in manage.py to name the site after: pass --site NAME');
    }
    const answers = checkAnswers({ host, sites, settings, origin: facts.origin });
    writeFileSync(target, deployfileSource(answers));
    out.write(`wrote ${target}: ${answers.sites.length} site${answers.sites.length === 1 ? '' : 's'} (${answers.sites.join(', ')}) on ${answers.host}${settings ? `, settings package ${settings}` : ''}\n`);
    const tsconfig = join(dir, 'tsconfig.json');
    if (!existsSync(tsconfig)) {
      writeFileSync(tsconfig, TSCONFIG);
      out.write(`wrote ${tsconfig}, so your editor and tsc check deployfile.ts\n`);
    }
    out.write(`\nNext:\n  npx deploy list                    check it loads: the sites and the tasks\n  npx deploy run deploy --dry-run    the exact commands each site would run, nothing run\n  npx deploy run deploy              deploy for real\n`);
    return EXIT.ok;
  } catch (error) {
    return reportFatal(error);
  }
}

async function askLine(question: string, defaultAnswer?: string): Promise<string> {
  const { input } = await import('@inquirer/prompts');
  return input({ message: question, default: defaultAnswer, required: true });
}
