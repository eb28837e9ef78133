/**
 * What decides whether `collectstatic` has anything to do: the inputs of
 * Django's two default finders (every `STATICFILES_DIRS` entry, and
 * `<app>/static` for every installed app, present or not yet), and the
 * settings package that configures them. After a collect, Django itself is
 * asked for those places (RECORD_CODE, through `manage.py shell`); the next
 * deploy walks them (path, size, mtime of every file) with plain python3,
 * without starting Django, and skips the collect when nothing moved and
 * STATIC_ROOT still holds what it collected.
 */

import { raw, sh, type Context } from '../src/index.ts';
import { PYTHON_ARGS } from './python-args.ts';
import { lastJson } from './uwsgi.ts';

/**
 * Where the last collect's inputs are recorded for a site: inside the
 * virtualenv, as pip's record, so a rebuilt virtualenv collects again.
 * Read by collectstatic and plan.
 */
export function staticStateOf(virtualenv: string): string {
  return `${virtualenv}/.deployfile/static.json`;
}

/** Run by `./manage.py shell -c` after a collect: where the finders read from, and STATIC_ROOT. */
export const RECORD_CODE = String.raw`
import json, os
from django.conf import settings
from django.apps import apps
dirs = [str(d[1] if isinstance(d, (list, tuple)) else d) for d in getattr(settings, 'STATICFILES_DIRS', [])]
places = dirs + [os.path.join(a.path, 'static') for a in apps.get_app_configs()]
default = {'django.contrib.staticfiles.finders.FileSystemFinder', 'django.contrib.staticfiles.finders.AppDirectoriesFinder'}
print('@@deployfile-static@@' + json.dumps({'staticRoot': str(settings.STATIC_ROOT or ''), 'places': places,
      'otherFinders': sorted(set(settings.STATICFILES_FINDERS) - default)}))
`;

/** The marker RECORD_CODE's line starts with (manage.py may print more before it). */
export const RECORD_MARKER = '@@deployfile-static@@';

/**
 * `python3 - check|save --state FILE --settings DIR [--record JSON]
 * [--release DIR --marker FILE]`: the fingerprint of the static inputs,
 * compared with (check) or written to (save) the state file. Prints one
 * JSON line. With `--release` (the releases layout) files count by content
 * and places inside the release by their path in it, so a new release with
 * the same inputs as the one collected last is unchanged; `--marker` names
 * the site's last collect into STATIC_ROOT (removed before each collect,
 * written after it), which must be this record's.
 */
export const STATIC_SCRIPT = String.raw`
import hashlib, json, os, sys
${PYTHON_ARGS}
for key in ('state', 'settings', 'marker'):
    if key in A:
        A[key] = os.path.expanduser(A[key])

# In a release (--release DIR), every file is new (a fresh checkout: new
# mtimes) and its place is under a new directory: files are told by their
# content, and places inside the release by their path in it.
RELEASE = os.path.expanduser(A['release']) if A.get('release') else None

def shown(place):
    if RELEASE and (place == RELEASE or place.startswith(RELEASE + '/')):
        return '<release>' + place[len(RELEASE):]
    return place

def content(p):
    d = hashlib.sha256()
    with open(p, 'rb') as f:
        for block in iter(lambda: f.read(1 << 16), b''):
            d.update(block)
    return d.hexdigest()

def walk(h, place):
    if not os.path.isdir(place):
        h.update(('missing %s\n' % shown(place)).encode())
        return
    h.update(('dir %s\n' % shown(place)).encode())
    for root, dirs, files in os.walk(place, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(root, name)
            try:
                st = os.stat(p)
                mark = content(p) if RELEASE else st.st_mtime_ns
            except OSError:
                continue
            h.update(('%s %d %s\n' % (os.path.relpath(p, place), st.st_size, mark)).encode())

def rebased(places, old):
    # The places the last collect's release recorded, in this release.
    if not old or not RELEASE:
        return places
    return [RELEASE + p[len(old):] if p == old or p.startswith(old + '/') else p for p in places]

def fingerprint(places, settings_dir):
    h = hashlib.sha256()
    for place in sorted(set(places)):
        walk(h, place)
    # The settings package configures the finders and the storage: its source, byte for byte.
    for name in sorted(os.listdir(settings_dir)) if os.path.isdir(settings_dir) else []:
        if name.endswith('.py'):
            with open(os.path.join(settings_dir, name), 'rb') as f:
                h.update(name.encode() + b'\n' + hashlib.sha256(f.read()).digest())
    return h.hexdigest()

def count(root):
    n = 0
    for _, _, files in os.walk(root):
        n += len(files)
    return n

def check():
    try:
        with open(A['state']) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return {'unchanged': False, 'why': 'no record of an earlier collect'}
    if state.get('otherFinders'):
        return {'unchanged': False, 'why': 'other static finders (%s) read inputs only they know' % ', '.join(state['otherFinders'])}
    if bool(RELEASE) != bool(state.get('release')):
        return {'unchanged': False, 'why': 'the last collect was %s a release' % ('not from' if RELEASE else 'from')}
    if fingerprint(rebased(state.get('places', []), state.get('release')), A['settings']) != state.get('fingerprint'):
        return {'unchanged': False, 'why': 'static inputs or settings changed'}
    # Releases keep one record per virtualenv, and all collect into one STATIC_ROOT: a release with another
    # virtualenv (other packages' static files) may have collected over these files since.
    if A.get('marker'):
        try:
            with open(A['marker']) as f:
                last = json.load(f)
        except (OSError, ValueError):
            last = {}
        if last.get('state') != A['state'] or last.get('fingerprint') != state.get('fingerprint'):
            return {'unchanged': False, 'why': 'another collect has written to STATIC_ROOT since'}
    root = state.get('staticRoot') or ''
    if not root or not os.path.isdir(root) or count(root) < state.get('files', 0):
        return {'unchanged': False, 'why': 'STATIC_ROOT %s no longer holds what was collected' % root}
    return {'unchanged': True, 'staticRoot': root, 'files': state.get('files', 0)}

def save():
    record = json.loads(A['record'])
    root = record.get('staticRoot') or ''
    state = {'fingerprint': fingerprint(record.get('places', []), A['settings']), 'places': record.get('places', []),
             'staticRoot': root, 'files': count(root) if root and os.path.isdir(root) else 0,
             'otherFinders': record.get('otherFinders', [])}
    if RELEASE:
        state['release'] = RELEASE
    os.makedirs(os.path.dirname(A['state']), exist_ok=True)
    tmp = A['state'] + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(state, f)
    os.replace(tmp, A['state'])
    if A.get('marker'):
        os.makedirs(os.path.dirname(A['marker']), exist_ok=True)
        with open(A['marker'] + '.tmp', 'w') as f:
            json.dump({'state': A['state'], 'fingerprint': state['fingerprint']}, f)
        os.replace(A['marker'] + '.tmp', A['marker'])
    return {'saved': True, 'files': state['files']}

print(json.dumps({'check': check, 'save': save}[sys.argv[1]]()))
`;

/** What `STATIC_SCRIPT check` prints. */
export interface StaticCheck {
  unchanged: boolean;
  why?: string;
  staticRoot?: string;
  files?: number;
}

/** Where a collect reads and writes its record: the state file, the settings package's directory, and the release it is in (releases layout). */
export interface StaticPlace {
  state: string;
  settingsDir: string;
  release?: string;
}

/**
 * The releases layout's record of the last collect into the shared
 * STATIC_ROOT, relative to the site user's home: which virtualenv's record
 * it matches. Removed before a collect starts, so a collect that fails half
 * way leaves none, and the next release collects.
 */
export const LAST_COLLECT_MARKER = '.deployfile/static-collected.json';

const releaseArgs = (place: StaticPlace): ReturnType<typeof sh> | ReturnType<typeof raw> =>
  place.release ? sh` --release ${place.release} --marker ${`~/${LAST_COLLECT_MARKER}`}` : raw('');

/**
 * Ask the server whether the static inputs are as the last collect left
 * them. Undefined when it could not tell (a warning says why): then collect.
 */
export async function checkStaticInputs(c: Context, place: StaticPlace): Promise<StaticCheck | undefined> {
  const check = await c.warnOnly().run(sh`python3 - check --state ${place.state} --settings ${place.settingsDir}${releaseArgs(place)}`, { quiet: true, stdin: STATIC_SCRIPT, label: 'python3 - check: are the static inputs as the last collect left them?' });
  const verdict = lastJson<StaticCheck>(check.stdout);
  if (!verdict) c.warn(`could not check the static inputs (${check.stderr.trim().split('\n').at(-1) || `exit code ${check.exitCode}`}); collecting`);
  return verdict;
}

/**
 * After a collect: ask Django where its finders read from and record
 * their fingerprint for the next deploy's check. `inVenv` runs in the code
 * and the virtualenv. A failure here only costs the next skip.
 */
export async function recordStaticInputs(c: Context, inVenv: Context, place: StaticPlace): Promise<void> {
  const asked = await inVenv.warnOnly().run(sh`./manage.py shell -c ${RECORD_CODE}`, { quiet: true, label: './manage.py shell: where the static finders read from' });
  const line = asked.stdout.split('\n').find((l) => l.startsWith(RECORD_MARKER));
  if (!line) {
    c.warn(`could not record the static inputs (${asked.stderr.trim().split('\n').at(-1) || `exit code ${asked.exitCode}`}): the next deploy collects again`);
    return;
  }
  await c.warnOnly().run(sh`python3 - save --state ${place.state} --settings ${place.settingsDir}${releaseArgs(place)} --record ${line.slice(RECORD_MARKER.length)}`, { quiet: true, stdin: STATIC_SCRIPT, label: 'python3 - save: the static inputs of this collect' });
}
