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

import { PYTHON_ARGS } from './python-args.ts';

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
 * `python3 - check|save --state FILE --settings DIR [--record JSON]`: the
 * fingerprint of the static inputs, compared with (check) or written to
 * (save) the state file. Prints one JSON line.
 */
export const STATIC_SCRIPT = String.raw`
import hashlib, json, os, sys
${PYTHON_ARGS}
for key in ('state', 'settings'):
    A[key] = os.path.expanduser(A[key])

def walk(h, place):
    if not os.path.isdir(place):
        h.update(('missing %s\n' % place).encode())
        return
    h.update(('dir %s\n' % place).encode())
    for root, dirs, files in os.walk(place, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(root, name)
            try:
                st = os.stat(p)
            except OSError:
                continue
            h.update(('%s %d %d\n' % (os.path.relpath(p, place), st.st_size, st.st_mtime_ns)).encode())

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
    if fingerprint(state.get('places', []), A['settings']) != state.get('fingerprint'):
        return {'unchanged': False, 'why': 'static inputs or settings changed'}
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
    os.makedirs(os.path.dirname(A['state']), exist_ok=True)
    tmp = A['state'] + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(state, f)
    os.replace(tmp, A['state'])
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
