/**
 * The site's virtualenv, and the test command: real when this machine's
 * python3 has Django, honest stand-ins otherwise. The deploy runs the same
 * commands either way (`pip install -r REQUIREMENTS`, `./manage.py
 * collectstatic --noinput` in the activated virtualenv); only what answers
 * them differs, and each stand-in says so in its output.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { quote, sh, type CommandInput } from '../src/index.ts';
import type { Workspace } from './workspace.ts';

const run = promisify(execFile);

/** What the demo uses for Python, and what it had to fake. */
export interface PythonSetup {
  /** True: Django, pip, tests and collectstatic are the real ones. */
  realDjango: boolean;
  /** The test command for the `test` task; undefined means the task's default, `./manage.py test pages`. */
  testCommand: CommandInput | undefined;
  /** One line per thing faked, for the demo to print. Empty when nothing Python-side is. */
  fakes: string[];
  /** Why stand-ins were needed, when they were. */
  reason?: string;
}

/** The first executable `name` on PATH, as the shell would find it. */
function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Makes the site's virtualenv at `w.virtualenv`. With Django importable by
 * python3: `python3 -m venv --system-site-packages`, so pip finds Django
 * already installed and needs no network. Without: a stand-in virtualenv
 * (see {@link writeStandIns}).
 */
export async function prepareVirtualenv(w: Workspace, say: (text: string) => void): Promise<PythonSetup> {
  const python3 = onPath('python3');
  // touchVassalIni's probe runs python3 on the server, which here is this machine.
  if (!python3) throw new Error('deploy demo needs python3 on PATH (the reload check runs it on the server, which is this machine)');

  let reason: string;
  try {
    await run(python3, ['-c', 'import django']);
    // ensurepip makes this the slowest step of the demo: say why nothing moves.
    say(`python3 has Django: making a real virtualenv for the site (python3 -m venv --system-site-packages), a few seconds...`);
    try {
      await run(python3, ['-m', 'venv', '--system-site-packages', w.virtualenv]);
      return { realDjango: true, testCommand: undefined, fakes: [] };
    } catch (error) {
      reason = `python3 has Django, but python3 -m venv failed (${lastLine(error)})`;
    }
  } catch {
    reason = `Django is not installed for ${python3}`;
  }
  const testCommand = await writeStandIns(w, python3);
  return {
    realDjango: false,
    testCommand,
    reason,
    fakes: [
      `tests: ${STAND_IN_TEST} byte-compiles the .py files instead of ./manage.py test pages`,
      "virtualenv: its pip installs nothing; its python3 fakes only collectstatic (copies each app's static/)",
    ],
  };
}

function lastLine(error: unknown): string {
  const stderr = (error as { stderr?: string }).stderr?.trim();
  return (stderr ? stderr.split('\n').pop() : undefined) ?? (error instanceof Error ? error.message : String(error));
}

const STAND_IN_TEST = 'stand-ins/test-without-django';

/**
 * Writes the stand-ins and returns the test command that runs the test one.
 * Shell scripts, so they work as the server's commands do (over SSH, in `sh`).
 */
async function writeStandIns(w: Workspace, python3: string): Promise<CommandInput> {
  const bin = join(w.virtualenv, 'bin');
  await mkdir(bin, { recursive: true });
  const files: Record<string, string> = {
    // Like a real venv's activate (as far as `. bin/activate` in a task needs): its bin/ first on PATH.
    [join(bin, 'activate')]: `# deployfile demo: a stand-in virtualenv, because Django is not installed on this machine.
# Like a real one, activating it puts its bin/ first on PATH.
VIRTUAL_ENV=${quote(w.virtualenv)}
export VIRTUAL_ENV
PATH="$VIRTUAL_ENV/bin:$PATH"
export PATH
`,
    [join(bin, 'pip')]: `#!/bin/sh
# deployfile demo stand-in for pip: installs nothing, lists what it was asked for.
echo "pip: deployfile demo stand-in (Django is not installed on this machine), installing nothing"
file=
while [ $# -gt 0 ]; do
  case "$1" in
    -r) file=\${2-}; shift ;;
    -r*) file=\${1#-r} ;;
  esac
  shift
done
[ -n "$file" ] || exit 0
sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$file" | while IFS= read -r line; do
  [ -z "$line" ] || echo "Requirement already satisfied: $line"
done
`,
    [join(bin, 'python3')]: `#!/bin/sh
# deployfile demo stand-in for the virtualenv's python3: Django is not installed
# on this machine, so only "manage.py collectstatic" is faked, by copying each
# app's static/ into static/ (what collectstatic does for this site). Anything
# else runs the real python3.
if [ "\${1##*/}" = manage.py ] && [ "\${2-}" = collectstatic ]; then
  echo "collectstatic: deployfile demo stand-in (Django is not installed on this machine), copying the apps' static files into static/"
  mkdir -p static
  for dir in */static; do
    [ -d "$dir" ] && [ "$dir" != static/static ] || continue
    cp -R "$dir/." static/
    echo "  copied $dir/ into static/"
  done
  echo "$(find static -type f | wc -l | tr -d ' ') static files in $PWD/static"
  exit 0
fi
exec ${quote(python3)} "$@"
`,
    [join(w.root, STAND_IN_TEST)]: `#!/bin/sh
# deployfile demo stand-in for "./manage.py test pages": Django is not
# installed on this machine, so the best check left is that every .py file of
# the project compiles.
echo "tests: deployfile demo stand-in (Django is not installed on this machine), byte-compiling the .py files instead of ./manage.py test pages"
files=$(git ls-files '*.py')
python3 -m py_compile $files || exit 1
echo "$(echo "$files" | wc -l | tr -d ' ') files compile"
`,
  };
  await mkdir(join(w.root, 'stand-ins'), { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    await writeFile(file, text);
    if (!file.endsWith('activate')) await chmod(file, 0o755);
  }
  await symlink('python3', join(bin, 'python'));
  return sh`sh ${join(w.root, STAND_IN_TEST)}`;
}
