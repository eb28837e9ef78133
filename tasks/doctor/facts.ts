/**
 * What `deploy doctor` gathers on a server, in one Python program run once
 * per site and account (`python3 - site|admin --spec JSON`, the program on
 * stdin), and the shapes it prints. It only reads: stat, open for reading,
 * `git status`/`ls-remote`, `pip check`, `nginx -T`, a connect to the socket.
 * Judging the facts is checks.ts's job, in TypeScript, where it is tested.
 *
 * The program is touchVassalIni's probe library (tasks/uwsgi.ts) plus two
 * entry points, so the app's load is reproduced by the same code that
 * explains a failed reload.
 */
import { PROBE_LIBRARY, type FileFacts, type Reproduction, type VassalLoad } from '../uwsgi.ts';

/** What the site-user pass needs to know, from the deployfile and the vassal ini. */
export interface SiteFactsSpec {
  ini: string;
  codeDir: string;
  virtualenv: string;
  /** The settings package, relative to codeDir. */
  settings: string;
  /** The requirements file, relative to codeDir. */
  requirements: string;
  /** How the ini loads the app (parseVassalIni), if it says. */
  load?: VassalLoad;
  /** A unix socket the ini binds, if any. */
  socket?: string;
  /** The `home`/`virtualenv` line of the ini, if any (it may differ from `virtualenv`). */
  home?: string;
}

/** What the admin pass needs: the socket to connect to as nginx's user. */
export interface AdminFactsSpec {
  socket?: string;
}

export interface CommandFacts {
  code: number | null;
  out: string;
  error?: string;
}

/** A path in the virtualenv's site-packages the site user cannot read. */
export interface Unreadable {
  path: string;
  user?: string;
  group?: string;
  mode?: string;
}

/** What `python3 - site` prints, run as the site user. */
export interface SiteFacts {
  user: { name: string; uid: number; gid: number; groups: string[] };
  ini: FileFacts;
  chdir?: { path: string; isDir: boolean; error?: string };
  venv: {
    path: string;
    python: string;
    exists: boolean;
    /** `python -c ...` ran: its version, or why it did not. */
    version?: string;
    error?: string;
    systemSitePackages: boolean;
    sitePackages?: string;
  };
  /**
   * The running emperor that watches the ini's directory (or glob), from its
   * command line and the ini files it names: whether it runs in tyrant mode.
   * Absent when none was found.
   */
  emperor?: { pid: number; binary: string; watches: string; tyrant: boolean };
  /** The uWSGI binary the emperor runs (or the one on PATH), and whether it needs a python plugin line. */
  uwsgi: { binary?: string; pythonBuiltin?: boolean; error?: string };
  repro?: Reproduction;
  pipCheck?: CommandFacts;
  /** Requirement names from the requirements file (no versions), or why it could not be read. */
  requirements: { file: string; names: string[]; error?: string; missing: { name: string; error: string }[] };
  unreadable: Unreadable[];
  socketDir?: FileFacts;
  socketFile?: FileFacts & { isSocket?: boolean };
  git: {
    head?: string;
    branch?: string;
    status?: string[];
    error?: string;
    origin?: string;
    /** `git ls-remote origin`: reachable, or why not. */
    reach?: CommandFacts;
    /** settings.py has the bytes of settings_production.py (what the deploy copies). */
    settingsIsProduction?: boolean;
  };
  /** The newest successful deploy in ~/.deployfile/history.jsonl. */
  deployed?: { time?: string; revision?: string; operator?: string };
  disk: { path: string; freeBytes: number; totalBytes: number }[];
  /** The vassal's uWSGI processes (the ini owner's), oldest first. */
  served: { pid: number; startedAt: number }[];
}

/** What `python3 - admin` prints: as root through the admin account, or as the site user when there is none. */
export interface AdminFacts {
  uid: number;
  /** One entry per running nginx master: its `nginx -T`, or why it could not be read. */
  nginx: { pid: number; command: string; dump?: string; error?: string }[];
  /** nginx's worker user: the first readable dump's `user` directive, else `www-data` (Debian's). */
  nginxUser: string;
  /** False when no dump was readable and nginxUser is a guess. */
  nginxUserKnown: boolean;
  /** Its groups, primary first (null: no such user). */
  nginxGroups: string[] | null;
  /** The socket connected to as nginx's user (root only). */
  connect?: { ok: boolean; user?: string; error?: string };
}

const DOCTOR_ENTRIES = String.raw`
import pwd, grp, re

SPEC = json.loads(A.get('spec') or '{}')

def run(argv, timeout=20, env=None):
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, env=env)
        return {'code': p.returncode, 'out': p.stdout.decode('utf-8', 'replace')[-8000:]}
    except subprocess.TimeoutExpired:
        return {'code': None, 'out': '', 'error': 'timed out after %ss' % timeout}
    except OSError as e:
        return {'code': None, 'out': '', 'error': str(e)}

def groups_of(name):
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return None
    out = [g.gr_name for g in grp.getgrall() if name in g.gr_mem]
    try:
        out.insert(0, grp.getgrgid(pw.pw_gid).gr_name)
    except KeyError:
        pass
    return out

def cmdline(pid):
    try:
        with open('/proc/%s/cmdline' % pid, 'rb') as f:
            return [a.decode('utf-8', 'replace') for a in f.read().split(b'\0') if a]
    except OSError:
        return []

TRUE = ('', 'true', '1', 'yes', 'on', 'y')

def emperor_settings(argv):
    """The emperor's watched paths and tyrant flag, from its command line and the ini files it names."""
    watched, tyrant = [], None
    def take(key, value):
        nonlocal tyrant
        if key == 'emperor' and value:
            watched.append(value)
        if key == 'emperor-tyrant':
            tyrant = value.lower() in TRUE
    def read_ini(path):
        try:
            section = 'uwsgi'
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line.startswith('['):
                        section = line.strip('[]').strip()
                    elif section == 'uwsgi' and '=' in line and not line.startswith((';', '#')):
                        k, _, v = line.partition('=')
                        take(k.strip(), v.strip())
        except OSError:
            pass
    i = 1
    while i < len(argv):
        a = argv[i]
        if a.startswith('--'):
            key, eq, value = a[2:].partition('=')
            if not eq and i + 1 < len(argv) and not argv[i + 1].startswith('-'):
                value = argv[i + 1]
                i += 1
            elif not eq:
                value = ''
            if key in ('ini', 'config') and value.endswith('.ini'):
                read_ini(value)
            take(key, value)
        elif a.endswith('.ini'):
            # uwsgi /etc/uwsgi/emperor.ini: a config file given without an option.
            read_ini(a)
        i += 1
    return watched, tyrant

def find_emperor(ini):
    """The running emperor whose vassal directory (or glob) holds the ini: its binary and whether it is a tyrant."""
    import fnmatch
    found = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        argv = cmdline(d)
        if not argv or 'uwsgi' not in os.path.basename(argv[0]):
            continue
        watched, tyrant = emperor_settings(argv)
        if not watched:
            continue
        found.append(argv[0])
        for w in watched:
            w = w.rstrip('/')
            if os.path.dirname(ini) == w or fnmatch.fnmatch(ini, w):
                return {'pid': int(d), 'binary': argv[0], 'watches': w, 'tyrant': bool(tyrant)}
    return {'binary': found[0]} if found else None

def emperor_binary(emperor):
    if emperor:
        return emperor['binary']
    for d in os.environ.get('PATH', '/usr/bin:/bin').split(':') + ['/usr/bin', '/usr/local/bin']:
        if os.access(os.path.join(d, 'uwsgi'), os.X_OK):
            return os.path.join(d, 'uwsgi')
    return None

def boot_time():
    with open('/proc/stat') as f:
        for line in f:
            if line.startswith('btime'):
                return int(line.split()[1])
    return 0

def requirement_names(path):
    names = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line or line.startswith('-'):
                continue
            m = re.match(r'[A-Za-z0-9][A-Za-z0-9._-]*', line)
            if m:
                names.append(m.group(0))
    return names

def site():
    os.chdir('/')
    # Read-only, really: no bytecode written by the imports below (the app's load, pip), no index refresh by git status.
    os.environ['PYTHONDONTWRITEBYTECODE'] = '1'
    # The slow, independent commands (pip check above all) run at once, in the background, while the rest is read.
    from concurrent.futures import ThreadPoolExecutor
    pool = ThreadPoolExecutor(max_workers=4)
    me = pwd.getpwuid(os.getuid())
    code_dir = SPEC['codeDir']
    genv = dict(os.environ, GIT_OPTIONAL_LOCKS='0', GIT_TERMINAL_PROMPT='0', GIT_SSH_COMMAND='ssh -o BatchMode=yes -o ConnectTimeout=10', LC_ALL='C')
    home = SPEC.get('home') or SPEC['virtualenv']
    python = os.path.join(home, 'bin', 'python')
    pending_pip = pool.submit(run, [python, '-m', 'pip', 'check', '--disable-pip-version-check'], 60,
                              dict(os.environ, PIP_NO_INPUT='1', PIP_DISABLE_PIP_VERSION_CHECK='1')) if os.path.exists(python) else None
    pending_reach = pool.submit(run, ['git', '-C', code_dir, 'ls-remote', '--quiet', 'origin', 'HEAD'], 20, genv)
    emperor = find_emperor(SPEC['ini'])
    binary = emperor_binary(emperor)
    pending_help = pool.submit(run, [binary, '--help'], 10) if binary else None
    out = {'user': {'name': me.pw_name, 'uid': me.pw_uid, 'gid': me.pw_gid, 'groups': groups_of(me.pw_name) or []}}
    out['ini'] = stat_of(SPEC['ini'])
    load = SPEC.get('load')
    if load and load.get('chdir'):
        out['chdir'] = {'path': load['chdir'], 'isDir': os.path.isdir(load['chdir'])}
        if not out['chdir']['isDir']:
            try:
                os.stat(load['chdir'])
                out['chdir']['error'] = 'not a directory'
            except OSError as e:
                out['chdir']['error'] = e.strerror or str(e)
    venv = {'path': home, 'python': python, 'exists': os.path.exists(python), 'systemSitePackages': False}
    try:
        with open(os.path.join(home, 'pyvenv.cfg')) as f:
            for line in f:
                k, _, v = line.partition('=')
                if k.strip() == 'include-system-site-packages':
                    venv['systemSitePackages'] = v.strip().lower() == 'true'
    except OSError:
        pass
    r = run([python, '-c', 'import sys, sysconfig; print(sys.version.split()[0]); print(sysconfig.get_paths()["purelib"])'], timeout=20)
    if r['code'] == 0:
        lines = r['out'].strip().splitlines()
        venv['version'] = lines[0] if lines else ''
        venv['sitePackages'] = lines[1] if len(lines) > 1 else None
    else:
        venv['error'] = r.get('error') or r['out'].strip()[-500:] or 'exit %s' % r['code']
    out['venv'] = venv

    uw = {'binary': binary}
    if binary:
        h = pending_help.result()
        if h['code'] is None:
            uw['error'] = h.get('error')
        else:
            uw['pythonBuiltin'] = '--wsgi-file' in h['out']
    out['uwsgi'] = uw
    if emperor and 'pid' in emperor:
        out['emperor'] = emperor

    if load and venv['exists']:
        A['load'] = json.dumps(load)
        out['repro'] = reproduce(False)

    reqfile = os.path.join(SPEC['codeDir'], SPEC['requirements'])
    req = {'file': reqfile, 'names': [], 'missing': []}
    try:
        req['names'] = requirement_names(reqfile)
    except OSError as e:
        req['error'] = e.strerror or str(e)
    if req['names'] and venv['exists'] and 'error' not in venv:
        code = ('import json, sys\nfrom importlib import metadata\nout = []\n'
                'for n in sys.argv[1:]:\n'
                '    try:\n        metadata.distribution(n).read_text("METADATA")\n'
                '    except Exception as e:\n        out.append({"name": n, "error": "%s: %s" % (type(e).__name__, e)})\n'
                'print(json.dumps(out))')
        r = run([python, '-c', code] + req['names'], timeout=30)
        try:
            req['missing'] = json.loads(r['out'].strip().splitlines()[-1])
        except (ValueError, IndexError):
            req['error'] = 'could not ask the virtualenv: ' + (r.get('error') or r['out'].strip()[-300:])
    out['requirements'] = req

    unreadable = []
    sp = venv.get('sitePackages')
    if sp:
        try:
            for name in sorted(os.listdir(sp)):
                path = os.path.join(sp, name)
                isdir = os.path.isdir(path)
                ok = os.access(path, os.R_OK | (os.X_OK if isdir else 0))
                if ok and isdir:
                    # One level down: pip run as root under a umask of 077 leaves the files, not the directory, closed.
                    try:
                        for sub in os.listdir(path)[:200]:
                            if not os.access(os.path.join(path, sub), os.R_OK):
                                ok = False
                                path = os.path.join(path, sub)
                                break
                    except OSError:
                        ok = False
                if not ok:
                    f = stat_of(path)
                    unreadable.append({k: f[k] for k in ('path', 'user', 'group', 'mode') if k in f})
        except OSError as e:
            unreadable.append({'path': sp, 'error': str(e)})
    out['unreadable'] = unreadable[:20]

    sock = SPEC.get('socket')
    if sock:
        out['socketDir'] = stat_of(os.path.dirname(sock) or '.')
        sf = stat_of(sock)
        try:
            import stat as st_mod
            sf['isSocket'] = st_mod.S_ISSOCK(os.stat(sock).st_mode)
        except OSError:
            pass
        out['socketFile'] = sf

    g = {}
    head = run(['git', '-C', code_dir, 'rev-parse', 'HEAD'], env=genv)
    if head['code'] == 0:
        g['head'] = head['out'].strip()
        b = run(['git', '-C', code_dir, 'symbolic-ref', '-q', '--short', 'HEAD'], env=genv)
        g['branch'] = b['out'].strip() if b['code'] == 0 else None
        st = run(['git', '-C', code_dir, 'status', '--porcelain', '--untracked-files=no'], env=genv)
        g['status'] = [l for l in st['out'].split('\n') if l.strip()] if st['code'] == 0 else None
        if st['code'] != 0:
            g['error'] = st['out'].strip()[-300:]
        o = run(['git', '-C', code_dir, 'config', '--get', 'remote.origin.url'], env=genv)
        g['origin'] = o['out'].strip() if o['code'] == 0 else None
        if g['origin']:
            g['reach'] = pending_reach.result()
        pkg = os.path.join(code_dir, SPEC['settings'])
        try:
            with open(os.path.join(pkg, 'settings.py'), 'rb') as a, open(os.path.join(pkg, 'settings_production.py'), 'rb') as b2:
                g['settingsIsProduction'] = a.read() == b2.read()
        except OSError:
            pass
    else:
        g['error'] = head.get('error') or head['out'].strip()[-300:]
    out['git'] = g

    deployed = None
    try:
        with open(os.path.join(me.pw_dir, '.deployfile', 'history.jsonl')) as f:
            for line in f:
                try:
                    h = json.loads(line)
                except ValueError:
                    continue
                if h.get('outcome') == 'ok' and h.get('revision'):
                    deployed = {k: h.get(k) for k in ('time', 'revision', 'operator')}
    except OSError:
        pass
    if deployed:
        out['deployed'] = deployed

    disk, seen = [], set()
    for path in [me.pw_dir, code_dir, home]:
        try:
            s = os.statvfs(path)
        except OSError:
            continue
        if s.f_fsid in seen and s.f_fsid != 0:
            continue
        seen.add(s.f_fsid)
        disk.append({'path': path, 'freeBytes': s.f_bavail * s.f_frsize, 'totalBytes': s.f_blocks * s.f_frsize})
    out['disk'] = disk

    served = []
    try:
        # This user's: what tyrant mode runs the vassal as when its ini is right (and when it is not, the checks say so).
        ini_uid = os.getuid()
        hz = os.sysconf('SC_CLK_TCK')
        bt = boot_time()
        for pid, (start, ppid) in vassal_procs(ini_uid, os.path.basename(SPEC['ini'])).items():
            served.append({'pid': pid, 'startedAt': bt + int(start) / hz})
    except OSError:
        pass
    out['served'] = sorted(served, key=lambda p: p['startedAt'])
    if pending_pip is not None and 'error' not in venv:
        out['pipCheck'] = pending_pip.result()
    pool.shutdown(wait=False)
    print(json.dumps(out))

def nginx_masters():
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        argv = cmdline(d)
        if argv and argv[0].startswith('nginx: master process'):
            words = ' '.join(argv)[len('nginx: master process'):].split()
            out.append((int(d), words))
    return sorted(out)

def admin():
    os.chdir('/')
    out = {'uid': os.getuid(), 'nginx': []}
    users = []
    for pid, words in nginx_masters():
        binary = words[0] if words and words[0].startswith('/') else 'nginx'
        argv = [binary]
        i = 1
        while i < len(words):
            if words[i] in ('-c', '-p') and i + 1 < len(words):
                argv += [words[i], words[i + 1]]
                i += 2
            else:
                i += 1
        argv.append('-T')
        r = run(argv, timeout=15)
        entry = {'pid': pid, 'command': ' '.join(argv)}
        if r['code'] == 0 and '# configuration file' in r['out']:
            entry['dump'] = r['out'][-200000:]
            m = re.search(r'^\s*user\s+([^\s;]+)', r['out'], re.M)
            users.append(m.group(1) if m else 'nobody')
        else:
            last = r['out'].strip().splitlines()
            entry['error'] = r.get('error') or (last[-1] if last else 'exit %s' % r['code'])
        out['nginx'].append(entry)
    # Debian's nginx.conf says www-data; nginx's own default is nobody.
    out['nginxUser'] = users[0] if users else 'www-data'
    out['nginxUserKnown'] = bool(users)
    out['nginxGroups'] = groups_of(out['nginxUser'])
    sock = SPEC.get('socket')
    if sock and os.getuid() == 0:
        name = out['nginxUser']
        try:
            pw = pwd.getpwnam(name)
            gids = [g.gr_gid for g in grp.getgrall() if name in g.gr_mem]
            pid = os.fork()
            if pid == 0:
                try:
                    os.setgroups(gids)
                    os.setgid(pw.pw_gid)
                    os.setuid(pw.pw_uid)
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(5)
                    s.connect(sock)
                    s.close()
                    os._exit(0)
                except PermissionError:
                    os._exit(13)
                except FileNotFoundError:
                    os._exit(2)
                except ConnectionRefusedError:
                    os._exit(111)
                except BaseException:
                    os._exit(1)
            _, status = os.waitpid(pid, 0)
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
            why = {0: None, 13: 'permission denied', 2: 'no such file', 111: 'connection refused (nothing listens)'}.get(code, 'failed (%s)' % code)
            out['connect'] = {'ok': code == 0, 'user': name} if code == 0 else {'ok': False, 'user': name, 'error': why}
        except KeyError:
            out['connect'] = {'ok': False, 'error': 'no user %s' % name}
    print(json.dumps(out))
`;

/**
 * The doctor's program: `python3 - site --spec JSON` as the site user,
 * `python3 - admin --spec JSON` as root (through the admin account) or, with
 * no admin account, as the site user. Prints one JSON line.
 */
export const DOCTOR_SCRIPT = `${PROBE_LIBRARY}${DOCTOR_ENTRIES}
{'site': site, 'admin': admin}[sys.argv[1]]()
`;
