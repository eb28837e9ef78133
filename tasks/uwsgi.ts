/**
 * What the task library knows about uWSGI: reading a vassal's ini, picking
 * the lines of its log that explain a failed start, and the small Python
 * program `touchVassalIni` runs on the server to watch a reload.
 */

import { PYTHON_ARGS } from './python-args.ts';

/** A socket a vassal listens on, as its ini declares it. */
export interface VassalSocket {
  /** `uwsgi` for `socket =`/`uwsgi-socket =`, `http` for `http-socket =`, `fastcgi` for `fastcgi-socket =`. */
  protocol: 'uwsgi' | 'http' | 'fastcgi';
  /** A unix socket path, or `host:port` (`:port` meaning every interface). */
  address: string;
}

/**
 * How uWSGI loads the app, as the ini says: enough to load it again the
 * same way (as the site user) and see why it fails.
 */
export interface VassalLoad {
  /** `chdir`: the working directory, first on sys.path. */
  chdir?: string;
  /** `home`/`virtualenv`/`venv`/`pyhome`: its `bin/python` runs the app. */
  home?: string;
  /** Every `env = K=V`, in order. */
  env: [string, string][];
  /** `pythonpath`/`python-path`/`pp`, in order, after the chdir. */
  pythonpath: string[];
  /** `module`/`wsgi` (or a `mount = /=pkg.mod:app`), without the `:callable`. */
  module?: string;
  /** `wsgi-file`/`file` (or a `mount = /=path.py`). */
  file?: string;
  /** The callable's name (`module = pkg:app` or `callable =`); uWSGI's default is `application`. */
  callable?: string;
}

/** What `touchVassalIni` needs from a vassal ini. */
export interface VassalInfo {
  socket?: VassalSocket;
  /** From `logto`, `logto2`, `daemonize`, `daemonize2` or `logger = file:`. */
  log?: string;
  /** How the app is loaded, when the ini names a module or file. */
  load?: VassalLoad;
  /** `master-fifo`: the first one, which the master reads commands from (`r` graceful reload, `c` chain reload). */
  masterFifo?: string;
  /** `touch-reload`: files whose touch makes the master reload the app (any owner may be set up to touch it). */
  touchReload?: string[];
  /** `lazy-apps`: each worker loads the app itself, which a chain reload needs. */
  lazyApps?: boolean;
  /** `processes`/`workers`: how many workers (uWSGI's default is 1). */
  processes?: number;
  /**
   * The longer of `reload-mercy` and `worker-reload-mercy`, in seconds, when
   * the ini sets either: how long a graceful reload waits for a worker
   * (uWSGI's default is 60).
   */
  reloadMercy?: number;
}

const SOCKET_KEYS: Record<string, VassalSocket['protocol']> = { socket: 'uwsgi', 'uwsgi-socket': 'uwsgi', 'http-socket': 'http', 'fastcgi-socket': 'fastcgi' };
const LOG_KEYS = new Set(['logto', 'logto2', 'daemonize', 'daemonize2']);
const HOME_KEYS = new Set(['home', 'virtualenv', 'venv', 'pyhome']);
const PYTHONPATH_KEYS = new Set(['pythonpath', 'python-path', 'pp']);
const MODULE_KEYS = new Set(['module', 'wsgi']);
const FILE_KEYS = new Set(['wsgi-file', 'file']);

/**
 * Read the `[uwsgi]` section of a vassal ini: its first socket and its log
 * file, with `%(placeholder)`s and the file-name magic variables (`%n`, `%d`,
 * `%p`, ...) expanded. Values still holding something only the server knows
 * (`$(ENV)`, `%k`, `@(file)`) are left out rather than guessed.
 *
 * @example
 * parseVassalIni('[uwsgi]\nsocket = /run/uwsgi/%n.sock\n', '/etc/uwsgi/emperor.d/alleged.ini')
 * // => { socket: { protocol: 'uwsgi', address: '/run/uwsgi/alleged.sock' } }
 */
export function parseVassalIni(text: string, iniPath: string): VassalInfo {
  const info: VassalInfo = {};
  const load: VassalLoad = { env: [], pythonpath: [] };
  let mount: string | undefined;
  const placeholders = new Map<string, string>();
  for (const [key, written] of iniDirectives(text)) {
    const value = expandMagic(written, iniPath, placeholders);
    if (value === undefined) continue;
    placeholders.set(key, value);
    const protocol = SOCKET_KEYS[key];
    if (protocol && !info.socket) info.socket = { protocol, address: value };
    if (LOG_KEYS.has(key) && !info.log) info.log = value;
    if (key === 'logger' && !info.log) {
      // logger = file:/path, or logger = name file:/path, or file:logfile=/path,...
      const file = /(?:^|\s)file:(?:logfile=)?([^,\s]+)/.exec(value);
      if (file) info.log = file[1];
    }
    if (key === 'master-fifo' && !info.masterFifo) info.masterFifo = value;
    if (key === 'touch-reload') (info.touchReload ??= []).push(value);
    if (key === 'lazy-apps' || key === 'lazy') info.lazyApps = isTrue(value);
    if ((key === 'processes' || key === 'workers' || key === 'p') && /^\d+$/.test(value)) info.processes = Number(value);
    if ((key === 'reload-mercy' || key === 'worker-reload-mercy') && /^\d+$/.test(value)) info.reloadMercy = Math.max(info.reloadMercy ?? 0, Number(value));
    if (key === 'chdir') load.chdir = value;
    if (HOME_KEYS.has(key)) load.home = value;
    if (key === 'env') {
      const at = value.indexOf('=');
      if (at > 0) load.env.push([value.slice(0, at), value.slice(at + 1)]);
    }
    if (PYTHONPATH_KEYS.has(key)) load.pythonpath.push(value);
    if (MODULE_KEYS.has(key)) setModule(load, value);
    if (FILE_KEYS.has(key)) load.file = value;
    if (key === 'callable') load.callable = value;
    if (key === 'mount' && mount === undefined) {
      // mount = /=pkg.wsgi:application, or mount = /=path/to/app.py
      const at = value.indexOf('=');
      if (at >= 0 && /^\/?$/.test(value.slice(0, at).trim())) mount = value.slice(at + 1).trim();
    }
  }
  if (!load.module && !load.file && mount) {
    if (mount.endsWith('.py') || mount.includes('/')) load.file = mount;
    else setModule(load, mount);
  }
  if (load.module || load.file) info.load = load;
  return info;
}

/** uWSGI's booleans: `true`, `1`, `yes`, `on` (and an empty value, as a bare flag). */
function isTrue(value: string): boolean {
  return ['', 'true', '1', 'yes', 'on', 'y'].includes(value.toLowerCase());
}

/**
 * Every `key = value` of an ini's `[uwsgi]` section, in order, values as
 * written (placeholders not expanded): for checks on the lines themselves,
 * such as a `uid =` that tyrant mode refuses or a missing `plugin =`.
 *
 * @example
 * iniDirectives('[uwsgi]\nplugin = python3\nuid = shop\n') // [['plugin', 'python3'], ['uid', 'shop']]
 */
export function iniDirectives(text: string): [string, string][] {
  const out: [string, string][] = [];
  let section = 'uwsgi';
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.*)\]$/.exec(line);
    if (header) {
      section = (header[1] as string).trim();
      continue;
    }
    const eq = line.indexOf('=');
    if (section === 'uwsgi' && eq > 0) out.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return out;
}

function setModule(load: VassalLoad, value: string): void {
  const colon = value.indexOf(':');
  load.module = colon >= 0 ? value.slice(0, colon) : value;
  if (colon >= 0 && value.slice(colon + 1)) load.callable = value.slice(colon + 1);
}

function expandMagic(value: string, iniPath: string, placeholders: Map<string, string>): string | undefined {
  if (/\$\(|@\(/.test(value)) return undefined;
  const slash = iniPath.lastIndexOf('/');
  const dir = slash >= 0 ? iniPath.slice(0, slash + 1) : './';
  const file = iniPath.slice(slash + 1);
  const dot = file.lastIndexOf('.');
  const name = dot > 0 ? file.slice(0, dot) : file;
  const ext = dot > 0 ? file.slice(dot + 1) : '';
  const dirParts = dir.split('/').filter(Boolean);
  const magic: Record<string, string> = {
    n: name,
    s: file,
    p: iniPath,
    d: dir,
    e: ext,
    c: dirParts[dirParts.length - 1] ?? '',
    '%': '%',
  };
  let unknown = false;
  const out = value.replace(/%\(([^)]+)\)|%([A-Za-z0-9%])/g, (match, placeholder: string | undefined, letter: string | undefined) => {
    if (placeholder !== undefined) {
      const known = placeholders.get(placeholder);
      if (known === undefined) unknown = true;
      return known ?? match;
    }
    const key = (letter as string).toLowerCase();
    if (/^[0-9]$/.test(key)) {
      const part = dirParts[Number(key)];
      if (part === undefined) unknown = true;
      return part ?? match;
    }
    // Upper-case variants refer to the first non-template config: the same file for a vassal.
    const known = magic[key];
    if (known === undefined) unknown = true;
    return known ?? match;
  });
  return unknown ? undefined : out;
}

const EXPLAINING = [
  /unable to load app/i,
  /no app loaded/i,
  /no python application found/i,
  /callable not found/i,
  /permission denied/i,
  /\bbind\(\)/,
  /\b\w*(Error|Exception):/,
  // A crashed worker: "!!! uWSGI process 123 got Segmentation Fault !!!"
  /^!!! uWSGI process \d+ got/,
  // gunicorn: "Worker failed to boot", "App failed to load", "Exception in worker process".
  /Worker failed to boot|App failed to load|Exception in worker process/,
];

/**
 * The lines of a uWSGI log that explain why an app did not come back: the
 * load failures uWSGI prints, each traceback's last frame and exception,
 * `Permission denied` and `bind()` errors. Repeats are dropped; at most
 * `max` lines, the last ones.
 *
 * @example
 * explainUwsgiLog(logSinceTouch)
 * // => ["  File \"/home/a/Sites/a/a/wsgi.py\", line 3, in <module>", "    import missing",
 * //     "ModuleNotFoundError: No module named 'missing'",
 * //     "unable to load app 0 (mountpoint='') (callable not found or import error)",
 * //     "*** no app loaded. going in full dynamic mode ***"]
 */
export function explainUwsgiLog(text: string, max = 20): string[] {
  const lines = text.split(/\r?\n/);
  const picked: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith('Traceback (most recent call last):')) {
      let end = i + 1;
      while (end < lines.length && /^\s/.test(lines[end] as string)) end++;
      let frame = -1;
      for (let j = i + 1; j < end; j++) if (/^\s+File "/.test(lines[j] as string)) frame = j;
      if (frame >= 0) {
        // Skip Python 3.11's ^^^^ markers: noise once the code line is shown.
        for (let j = frame; j < end; j++) if (!/^\s*[~^]+\s*$/.test(lines[j] as string)) picked.push(lines[j] as string);
      }
      if (end < lines.length) picked.push(lines[end] as string);
      i = end;
      continue;
    }
    if (EXPLAINING.some((pattern) => pattern.test(line))) picked.push(line);
  }
  const seen = new Set<string>();
  const unique = picked.filter((line) => {
    const key = line.trim();
    if (key === '' || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return unique.slice(-max);
}

/**
 * Runs on the server as `python3 - MODE ...` with the program on stdin, so
 * the command line shown to the user stays short. Python is there on any
 * Django host; curl, pgrep or ss may not be.
 *
 * `snapshot` records what "before the touch" looks like: the log's size
 * (when a log is readable), the vassal's uWSGI processes as `pid:starttime:ppid`
 * (processes of the ini's owner whose command line mentions uwsgi and, when
 * it names an ini, this one; only /proc/<pid>/stat, status and cmdline are
 * read, which stay readable when a tyrant-mode vassal is not dumpable), and
 * the ini's owner and mode. It also waits (at most 2s) until the clock's
 * second is past the ini's mtime: the emperor only reloads when the mtime,
 * in whole seconds, grows, so a touch within the same second as the previous
 * one would be lost.
 *
 * `wait` polls until it has a verdict on the *new* instance. Evidence of it:
 * a `*** Starting uWSGI` line in the log after the recorded size, or a uWSGI
 * process that was not there before with every old worker gone (a graceful
 * reload keeps the master's pid and respawns the workers); without either
 * (no log, and one process with no workers, or none to be seen) it probes
 * after `--grace` seconds and says so. Then each poll probes (the health
 * URL, else a request over the socket) and decides as soon as it can:
 * success on a response below 500 (below 400 for a health URL); failure on
 * uWSGI's own "no app" 500, on three 5xx in a row, when the log shows the
 * load failed, or when the vassal is not running (no process, the socket
 * refuses) `--settle` seconds after the touch; else at `--timeout`. Times
 * count from the ini's mtime, i.e. the touch. On failure it adds the ini's,
 * the socket's and its directory's owner and mode, and (given `--load`, the
 * JSON of a {@link VassalLoad}) reproduces the load as this user: the ini's
 * python, chdir, env and sys.path, import, get the callable and, when the
 * app answered 5xx, call it for a GET of the probed path, catching the
 * exception (Django's `got_request_exception` too). It prints one JSON line.
 */
export const PROBE_LIBRARY = String.raw`
import json, os, socket, struct, subprocess, sys, time
${PYTHON_ARGS}
LOG_LIMIT = 65536

def is_unix(addr):
    return '/' in addr or not addr.rpartition(':')[2].isdigit()

def owner(uid, gid):
    try:
        import pwd
        u = pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        u = str(uid)
    try:
        import grp
        g = grp.getgrgid(gid).gr_name
    except (KeyError, ImportError):
        g = str(gid)
    return u, g

def stat_of(path):
    try:
        st = os.stat(path)
    except OSError as e:
        return {'path': path, 'error': e.strerror or str(e)}
    u, g = owner(st.st_uid, st.st_gid)
    return {'path': path, 'uid': st.st_uid, 'gid': st.st_gid, 'user': u, 'group': g,
            'mode': '%04o' % (st.st_mode & 0o7777)}

# The app's processes: a vassal's uWSGI processes (tyrant mode runs them as
# the ini's owner), or those of another app server (program = gunicorn, ...).
# Only /proc/<pid>/stat, status and cmdline are read: a vassal setuid'd by
# the root emperor is not dumpable, so its fd/ and environ are closed to us.
def vassal_procs(uid, ini_base, program='uwsgi'):
    out = {}
    program = program.lower()
    for d in os.listdir('/proc'):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                st = f.read()
            rest = st[st.rfind(')') + 2:].split()
            if rest[0] in ('Z', 'X'):
                continue
            with open('/proc/%s/status' % d) as f:
                puid = [int(l.split()[1]) for l in f if l.startswith('Uid:')][0]
            if puid != uid:
                continue
            comm = st[st.find('(') + 1:st.rfind(')')]
            try:
                with open('/proc/%s/cmdline' % d, 'rb') as f:
                    argv = [a.decode('utf-8', 'replace') for a in f.read().split(b'\0') if a]
            except OSError:
                argv = []
            # The program's own name, not its arguments (this script's
            # command line names the ini too): argv[0], or the script or
            # -m module an interpreter runs (python -m gunicorn), or comm.
            names = [comm] + [os.path.basename(a) for a in argv[:3] if a and not a.startswith('-') and not any(c.isspace() for c in a)]
            if not any(program in n.lower() for n in names):
                continue
            # An emperor run as this user is not one of its vassals.
            if any(a == '--emperor' or a.startswith('--emperor=') for a in argv):
                continue
            # A tyrant vassal's command line is "uwsgi-core --ini NAME.ini" (relative to the vassal dir).
            inis = [a for a in argv if a.endswith('.ini')]
            if inis and ini_base and not any(os.path.basename(a) == ini_base for a in inis):
                continue
            out[int(d)] = (rest[19], int(rest[1]))
        except (OSError, IndexError, ValueError):
            continue
    return out

def procs_text(procs):
    return ','.join('%d:%s:%d' % (p, s, pp) for p, (s, pp) in sorted(procs.items()))

def parse_procs(text):
    out = {}
    for item in (text or '').split(','):
        parts = item.split(':')
        if len(parts) == 3:
            out[int(parts[0])] = (parts[1], int(parts[2]))
    return out

def workers(procs):
    return set(p for p, (s, pp) in procs.items() if pp in procs)

def log_size(path):
    try:
        return os.stat(path).st_size, None
    except OSError as e:
        return None, str(e)

def read_log(path, offset):
    try:
        size = os.stat(path).st_size
        with open(path, 'rb') as f:
            # Smaller than before: rotated or truncated, so all of it is new.
            f.seek(offset if size >= offset else 0)
            data = f.read()
    except OSError as e:
        return None, str(e)
    return data[-LOG_LIMIT:].decode('utf-8', 'replace'), None

def connect(addr, timeout):
    if is_unix(addr):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = addr
    else:
        host, _, port = addr.rpartition(':')
        host = host.strip('[]') or '127.0.0.1'
        if host in ('0.0.0.0', '*'):
            host = '127.0.0.1'
        s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_STREAM)
        target = (host, int(port))
    s.settimeout(timeout)
    s.connect(target)
    return s

def read_response(s):
    data = b''
    while len(data) < 65536:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    first = lines[0].strip()
    parts = first.split()
    ctype = ''
    for line in lines[1:]:
        if line.lower().startswith('content-type:'):
            ctype = line.split(':', 1)[1].strip()
    if len(parts) >= 2 and parts[0].startswith('HTTP/') and parts[1].isdigit():
        return int(parts[1]), first, ctype, body
    return None, first or 'connection closed without a response', ctype, body

# FastCGI (what nginx's fastcgi_pass and mod_fcgid speak): one GET as a
# responder request, then the CGI-style answer of its STDOUT records
# ("Status: 404 Not Found", headers, a blank line, the body).
def fcgi_record(kind, content):
    return struct.pack('>BBHHBB', 1, kind, 1, len(content), 0, 0) + content

def fcgi_pairs(env):
    out = b''
    for k, v in env.items():
        k, v = k.encode(), v.encode()
        for n in (len(k), len(v)):
            out += struct.pack('>B', n) if n < 128 else struct.pack('>I', n | 0x80000000)
        out += k + v
    return out

def fcgi_get(s, env):
    s.sendall(fcgi_record(1, struct.pack('>HB5x', 1, 0)) + fcgi_record(4, fcgi_pairs(env)) + fcgi_record(4, b'') + fcgi_record(5, b''))
    data, out = b'', b''
    while True:
        while len(data) >= 8:
            _, kind, _, clen, plen, _ = struct.unpack('>BBHHBB', data[:8])
            if len(data) < 8 + clen + plen:
                break
            content, data = data[8:8 + clen], data[8 + clen + plen:]
            if kind == 6:
                out += content
            elif kind == 3:
                return fcgi_response(out)
        chunk = s.recv(4096)
        if not chunk or len(out) > 65536:
            return fcgi_response(out) if out else (None, 'connection closed without a FastCGI response', '', b'')
        data += chunk

def fcgi_response(out):
    ends = [(out.find(sep), sep) for sep in (b'\r\n\r\n', b'\n\n') if out.find(sep) >= 0]
    at, sep = min(ends) if ends else (len(out), b'')
    head, body = out[:at], out[at + len(sep):]
    status, first, ctype = 200, 'FastCGI 200 (no Status header)', ''
    for line in head.decode('latin-1').replace('\r', '').split('\n'):
        name, _, value = line.partition(':')
        if name.strip().lower() == 'status' and value.strip()[:3].isdigit():
            status, first = int(value.strip()[:3]), 'FastCGI Status: %s' % value.strip()
        elif name.strip().lower() == 'content-type':
            ctype = value.strip()
    return status, first, ctype, body

def probe_socket(proto, addr, timeout, path, host):
    s = connect(addr, timeout)
    try:
        if proto == 'fastcgi':
            return fcgi_get(s, {'REQUEST_METHOD': 'GET', 'REQUEST_URI': path, 'SCRIPT_NAME': '', 'PATH_INFO': path,
                                'QUERY_STRING': '', 'SERVER_NAME': host, 'SERVER_PORT': '80',
                                'SERVER_PROTOCOL': 'HTTP/1.0', 'HTTP_HOST': host, 'REMOTE_ADDR': '127.0.0.1',
                                'GATEWAY_INTERFACE': 'CGI/1.1'})
        if proto == 'http':
            s.sendall(('GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' % (path, host)).encode())
        else:
            env = {'REQUEST_METHOD': 'GET', 'REQUEST_URI': path, 'PATH_INFO': path, 'QUERY_STRING': '',
                   'SERVER_NAME': host, 'SERVER_PORT': '80', 'SERVER_PROTOCOL': 'HTTP/1.0',
                   'HTTP_HOST': host, 'REMOTE_ADDR': '127.0.0.1'}
            body = b''
            for k, v in env.items():
                k, v = k.encode(), v.encode()
                body += struct.pack('<H', len(k)) + k + struct.pack('<H', len(v)) + v
            s.sendall(struct.pack('<BHB', 0, len(body), 0) + body)
        return read_response(s)
    finally:
        s.close()

def probe_url(url, timeout):
    import urllib.request, urllib.error
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, 'HTTP %d from %s' % (r.status, url), r.headers.get('Content-Type', ''), r.read(65536)
    except urllib.error.HTTPError as e:
        try:
            body = e.read(65536)
        except Exception:
            body = b''
        return e.code, 'HTTP %d from %s' % (e.code, url), e.headers.get('Content-Type', '') if e.headers else '', body

# uWSGI's own answer when no app is loaded: 2.0 sends a bare text/plain
# "Internal Server Error" (and logs "no python application found"); 1.x said
# so in the body.
def no_app(status, ctype, body):
    low = body.lower()
    if b'no python application found' in low or b'python application not found' in low:
        return True
    return status == 500 and ctype.startswith('text/plain') and body.strip() == b'Internal Server Error'

# Whether the vassal (tyrant mode: the ini's uid and gid, no other groups)
# may create files in a directory; not os.access, which answers for us.
def writable_by(facts, uid, gid):
    if 'mode' not in facts:
        return None
    mode = int(facts['mode'], 8)
    if uid == 0:
        return True
    if uid == facts['uid']:
        return mode & 0o300 == 0o300
    if gid == facts['gid']:
        return mode & 0o030 == 0o030
    return mode & 0o003 == 0o003

def ini_facts(ini):
    facts = stat_of(ini)
    try:
        facts['mtime'] = os.stat(ini).st_mtime
    except OSError:
        pass
    return facts

# Whose processes the vassal's are: a tyrant emperor runs it as the ini's
# owner; a root-owned ini (a non-tyrant emperor) drops to its uid=, which
# for a site deployed as its own user is this user.
def procs_uid(st):
    return st.st_uid if st.st_uid != 0 else os.getuid()

# Whose processes, and which: the vassal ini's (its owner's uWSGI), or the
# app server's the deployfile describes (--uid and --program, no ini).
def whose():
    if A.get('ini'):
        return procs_uid(os.stat(A['ini'])), os.path.basename(A['ini']), 'uwsgi'
    uid = os.getuid()
    if A.get('user'):
        import pwd
        try:
            uid = pwd.getpwnam(A['user']).pw_uid
        except KeyError:
            sys.exit('there is no user %s on this server (vars.app.user names whose processes the app server runs)' % A['user'])
    return uid, None, A.get('program', 'uwsgi')

def uptime():
    with open('/proc/uptime') as f:
        return float(f.read().split()[0])

# A reload still under way from an earlier touch of the ini: the vassal has
# no worker yet, or one older than that touch, or one born under a second
# ago. A touch then can be lost: the emperor's message reaches the master
# mid-reload, or reaches the new master before its new worker can take the
# signal, and the master waits out its reload-mercy (60 s) for that worker.
def reloading(procs, touched_ago):
    if not procs:
        return False
    ws = workers(procs)
    if not ws:
        return True
    hz, up = os.sysconf('SC_CLK_TCK'), uptime()
    for p in ws:
        age = up - int(procs[p][0]) / hz
        if age >= touched_ago or age < 1.0:
            return True
    return False

def snapshot():
    size, err = log_size(A['log']) if A.get('log') else (None, None)
    uid, ini_base, program = whose()
    procs = vassal_procs(uid, ini_base, program)
    earlier = None
    settle = float(A.get('settle-earlier') or 0)
    if settle and A.get('ini'):
        began = time.time()
        try:
            touched = os.stat(A['ini']).st_mtime
        except OSError:
            touched = None
        if touched is not None and 0 <= began - touched < 120 and reloading(procs, began - touched):
            while time.time() - began < settle:
                time.sleep(0.2)
                procs = vassal_procs(uid, ini_base, program)
                if not reloading(procs, time.time() - touched):
                    break
            earlier = {'ago': round(began - touched, 1), 'waited': round(time.time() - began, 1),
                       'settled': not reloading(procs, time.time() - touched)}
    # A touch within the second of the last change may not be seen (mtimes are compared in whole seconds).
    marked = A.get('ini') or A.get('marker')
    mtime = os.stat(marked).st_mtime if marked and os.path.exists(marked) else None
    waited = 0.0
    while mtime is not None and int(time.time()) <= int(mtime) and waited < 2:
        time.sleep(0.1)
        waited += 0.1
    print(json.dumps({'logSize': size, 'logError': err, 'procs': procs_text(procs), 'ini': ini_facts(A['ini']) if A.get('ini') else None,
                      'uid': os.getuid(), 'mtime': mtime, 'now': time.time(), 'earlier': earlier}))

REPRO = r'''
import importlib, importlib.util, json, os, sys, traceback
spec = json.loads(sys.argv[1])
out = {'ok': False}
def frames(e):
    tb = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith('<') and '/importlib/' not in f.filename]
    return [{'file': f.filename, 'line': f.lineno, 'name': f.name, 'code': f.line or ''} for f in tb]
def failed(stage, e):
    out.update({'stage': stage, 'type': type(e).__name__, 'message': str(e), 'frames': frames(e),
                'traceback': traceback.format_exception(type(e), e, e.__traceback__)[-12:]})
    if isinstance(e, SyntaxError):
        out['syntax'] = {'file': e.filename, 'line': e.lineno, 'offset': e.offset, 'code': (e.text or '').rstrip()}
    return out
def wsgi_like(mod, name, value):
    if name.startswith('_') or isinstance(value, type) or not callable(value):
        return False
    return type(value).__name__ == 'WSGIHandler' or getattr(value, '__module__', '') == mod.__name__
def main():
    if spec.get('chdir'):
        os.chdir(spec['chdir'])
    sys.path[:0] = [p for p in [spec.get('chdir') or os.getcwd()] + spec.get('pythonpath', []) if p]
    for k, v in spec.get('env', []):
        os.environ[k] = v
    try:
        if spec.get('module'):
            mod = importlib.import_module(spec['module'])
        else:
            path = spec['file']
            s = importlib.util.spec_from_file_location('uwsgi_file_' + os.path.basename(path).replace('.', '_'), path)
            mod = importlib.util.module_from_spec(s)
            s.loader.exec_module(mod)
    except BaseException as e:
        return failed('import', e)
    try:
        app = getattr(mod, spec.get('callable') or 'application')
    except AttributeError as e:
        out['candidates'] = sorted(n for n, v in vars(mod).items() if wsgi_like(mod, n, v))
        return failed('callable', e)
    out['loaded'] = True
    if not spec.get('call'):
        out['ok'] = True
        return out
    caught = []
    try:
        from django.core.signals import got_request_exception
        got_request_exception.connect(lambda sender, **kw: caught.append(sys.exc_info()[1]), weak=False)
    except Exception:
        pass
    status = []
    def start_response(s, headers, exc_info=None):
        status.append(s)
        return lambda data: None
    path = spec.get('path') or '/'
    import io
    environ = {'REQUEST_METHOD': 'GET', 'PATH_INFO': path, 'SCRIPT_NAME': '', 'QUERY_STRING': '',
               'SERVER_NAME': spec.get('host') or 'localhost', 'SERVER_PORT': '80', 'SERVER_PROTOCOL': 'HTTP/1.0',
               'HTTP_HOST': spec.get('host') or 'localhost', 'REMOTE_ADDR': '127.0.0.1', 'wsgi.version': (1, 0),
               'wsgi.url_scheme': 'http', 'wsgi.input': io.BytesIO(b''), 'wsgi.errors': sys.stderr,
               'wsgi.multithread': False, 'wsgi.multiprocess': True, 'wsgi.run_once': False}
    try:
        result = app(environ, start_response)
        try:
            for _ in result:
                pass
        finally:
            getattr(result, 'close', lambda: None)()
    except BaseException as e:
        return failed('call', e)
    out['status'] = status[0] if status else None
    if caught and caught[-1] is not None:
        return failed('call', caught[-1])
    out['ok'] = True
    return out
result = main()
sys.stdout.write('\n@@deployfile-repro@@' + json.dumps(result) + '\n')
'''

def reproduce(call):
    spec = json.loads(A['load'])
    spec['call'] = call
    home = spec.get('home')
    python = os.path.join(home, 'bin', 'python') if home and os.path.exists(os.path.join(home, 'bin', 'python')) else 'python3'
    name = spec.get('callable') or 'application'
    if spec.get('module'):
        code = 'import %s; %s.%s' % (spec['module'], spec['module'], name)
    else:
        code = 'import runpy; runpy.run_path(%r)[%r]' % (spec['file'], name)
    command = '%s%s -c %s' % ('cd %s; ' % spec['chdir'] if spec.get('chdir') else '', python, "'" + code.replace("'", "'\\''") + "'")
    env = dict(os.environ)
    for k, v in spec.get('env', []):
        env[k] = v
    try:
        p = subprocess.run([python, '-c', REPRO, json.dumps(spec)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=float(A.get('repro-timeout', 20)))
    except subprocess.TimeoutExpired:
        return {'ok': False, 'error': 'the reproduction took longer than %ss' % A.get('repro-timeout', 20), 'command': command}
    except OSError as e:
        return {'ok': False, 'error': 'cannot run %s: %s' % (python, e), 'command': command}
    text = p.stdout.decode('utf-8', 'replace')
    at = text.rfind('@@deployfile-repro@@')
    if at < 0:
        err = p.stderr.decode('utf-8', 'replace').strip().splitlines()
        return {'ok': False, 'error': 'the reproduction printed nothing (exit %s)%s' % (p.returncode, ': ' + err[-1] if err else ''), 'command': command}
    out = json.loads(text[at + len('@@deployfile-repro@@'):].strip().splitlines()[0])
    out['command'] = command
    out['python'] = python
    return out

# How an app server's log says it starts afresh, and that the app cannot load.
LOG_WORDS = {
    'uwsgi': ('*** Starting uWSGI', ('unable to load app', 'no app loaded', 'bind(): ')),
    'gunicorn': ('Starting gunicorn', ('Worker failed to boot', 'App failed to load', 'Connection in use')),
}

def wait():
    timeout, interval = float(A['timeout']), float(A['interval'])
    grace, settle = float(A.get('grace', 5)), float(A.get('settle', 6))
    started = time.time()
    ini = A.get('ini')
    try:
        uid, ini_base, program = whose()
    except OSError:
        uid, ini_base, program = os.getuid(), os.path.basename(ini), 'uwsgi'
    what = 'uWSGI' if program == 'uwsgi' else program
    # The reload's start is the mtime of what it touched or wrote (the ini,
    # a touch-reload file, the master FIFO: writing a FIFO updates its mtime).
    # A command that leaves no mark (a supervisor's restart, which itself
    # takes seconds): the snapshot's clock, taken just before it, so the
    # verdict's seconds include the restart.
    marked = A.get('marker') or ini
    try:
        touched = os.stat(marked).st_mtime if marked else None
    except OSError:
        touched = None
    if touched is None or not (started - 10 < touched <= started + 1):
        touched = float(A['start']) if A.get('start') else started
    deadline = started + timeout
    # An earlier touch can leave the master deaf to reloads until its
    # reload-mercy runs out (see deafWindow in touch-vassal-ini.ts): with no
    # sign of a restart by the timeout, wait until then, when it reloads itself.
    mercy_until = float(A['mercy-until']) if A.get('mercy-until') else None
    log, offset = A.get('log'), int(A.get('log-offset') or 0)
    addr, proto, url = A.get('socket'), A.get('protocol', 'uwsgi'), A.get('url')
    path, host = A.get('path', '/'), A.get('host', 'localhost')
    before = parse_procs(A.get('procs'))
    old_workers = workers(before)
    before_keys = set((p, s) for p, (s, pp) in before.items())
    st = {'evidence': None, 'source': None, 'probe': None, 'text': '', 'logError': None, 'fives': 0, 'dead': 0,
          'status': None, 'body': '', 'mercy': False}

    def finish(ok, kind, reason):
        seconds = round(time.time() - touched, 1)
        out = {'ok': ok, 'kind': kind, 'reason': reason, 'evidence': st['evidence'], 'source': st['source'],
               'probe': st['probe'], 'status': st['status'], 'body': st['body'][:300], 'log': st['text'],
               'logError': st['logError'], 'seconds': seconds, 'waitedForMercy': st['mercy']}
        if not ok:
            out['ini'] = ini_facts(ini) if ini else None
            if addr and is_unix(addr):
                out['socketDir'] = stat_of(os.path.dirname(addr) or '.')
                out['socketDir']['writable'] = writable_by(out['socketDir'], (out['ini'] or {}).get('uid', uid), (out['ini'] or {}).get('gid'))
                out['socketFile'] = stat_of(addr)
            if A.get('load') and kind != 'timeout-no-restart':
                out['repro'] = reproduce(kind in ('http-500', 'timeout'))
            out['explainSeconds'] = round(time.time() - touched - seconds, 1)
        print(json.dumps(out))

    while True:
        now = time.time()
        elapsed = now - touched
        log_ok = False
        if log:
            got, st['logError'] = read_log(log, offset)
            st['text'] = got if got is not None else st['text']
            log_ok = st['logError'] is None
            starting, fatal = LOG_WORDS.get(program, (None, ()))
            at = st['text'].find(starting) if starting else -1
            if st['evidence'] is None and at >= 0:
                st['evidence'], st['source'] = '%s restarted (log)' % what, 'log'
            if at >= 0 and any(f in st['text'][at:] for f in fatal):
                time.sleep(min(interval, 0.5))
                got, _ = read_log(log, offset)
                st['text'] = got if got is not None else st['text']
                return finish(False, 'log', '%s could not load the app' % what)
        procs = vassal_procs(uid, ini_base, program)
        if st['evidence'] is None:
            fresh = sorted(p for p, (s, pp) in procs.items() if (p, s) not in before_keys)
            if fresh and not (old_workers & set(procs)):
                st['evidence'], st['source'] = 'new %s processes (pids %s)' % (what, ','.join(map(str, fresh))), 'procs'
            elif before and not old_workers and not log_ok and elapsed >= grace:
                st['evidence'], st['source'] = ('one %s process and no workers to tell the new instance from the old one; '
                                                'probed after %gs' % (what, grace)), 'grace'
            elif not before and not procs and not log_ok and elapsed >= grace:
                st['evidence'], st['source'] = ('no %s process of uid %d to be seen and no log; probed after %gs' % (what, uid, grace)), 'grace'
            # All old processes gone and no new one: a server started on demand
            # (mod_fcgid after apachectl graceful) starts at the first request,
            # which only the front server's URL can make.
            elif url and before and not procs and not log_ok and elapsed >= grace:
                st['evidence'], st['source'] = ('the old %s processes are gone and none runs yet (started on demand?); probed %s after %gs' % (what, url, grace)), 'grace'
        if st['evidence'] is not None and (url or addr):
            try:
                left = max(0.5, min(5.0, deadline - time.time()))
                if url:
                    status, st['probe'], ctype, body = probe_url(url, left)
                else:
                    status, st['probe'], ctype, body = probe_socket(proto, addr, left, path, host)
                st['status'], st['body'] = status, body.decode('utf-8', 'replace')
                if status is not None and status < (400 if url else 500):
                    return finish(True, 'answered', 'answered')
                if status is not None and no_app(status, ctype, body):
                    return finish(False, 'no-app', 'the new instance answers without an app (uWSGI: no python application found)')
                if status is not None and status >= 500:
                    st['fives'] += 1
                    if st['fives'] >= 3:
                        if url and status in (502, 503, 504):
                            return finish(False, 'gateway', 'the web server cannot reach the new instance (HTTP %d, %d times)' % (status, st['fives']))
                        return finish(False, 'http-500', 'the new instance answers HTTP %d (%d times)' % (status, st['fives']))
                else:
                    st['fives'] = 0
            except Exception as e:
                st['probe'] = '%s: %s' % (type(e).__name__, e)
                st['status'], st['body'] = None, ''
        if st['evidence'] is not None and not (url or addr):
            return finish(True, 'restarted', 'restarted (nothing to probe)')
        # Not running: no process of the vassal, nothing listening, after the emperor had time.
        if addr and not procs and elapsed >= settle:
            try:
                connect(addr, 1.0).close()
                st['dead'] = 0
            except (ConnectionRefusedError, FileNotFoundError) as e:
                st['dead'] += 1
                st['probe'] = '%s: %s' % (type(e).__name__, e)
                if st['dead'] >= 2:
                    return finish(False, 'dead', '%s is not running: no %s process of uid %d and %s refuses connections' % ('the vassal' if ini else 'the app server', what, uid, addr))
            except OSError:
                st['dead'] = 0
        else:
            st['dead'] = 0
        if time.time() >= deadline and st['evidence'] is None and mercy_until and time.time() < mercy_until:
            st['mercy'] = True
            deadline = mercy_until
        if time.time() >= deadline:
            if st['evidence']:
                return finish(False, 'timeout', 'the new instance did not answer within %gs' % timeout)
            if st['mercy']:
                return finish(False, 'timeout-no-restart', 'no sign of a restart within %gs, though the reload-mercy an earlier touch may have started had run out' % round(time.time() - touched))
            return finish(False, 'timeout-no-restart', ('no sign of a restart within %gs (was the ini touched? is the emperor watching it?)' % timeout) if ini else
                          ('no new %s process of uid %d within %gs: did the reload restart it? (app.program and app.user say which processes are its)' % (what, uid, timeout)))
        time.sleep(interval)
`;

/**
 * The program `touchVassalIni` runs on the server (`python3 - snapshot|wait
 * --key value ...`, the program on stdin): {@link PROBE_LIBRARY} and its
 * entry points. `deploy doctor` runs the same library with entry points of
 * its own, so the app's load is reproduced by one piece of code.
 */
export const PROBE_SCRIPT = PROBE_LIBRARY + String.raw`
{'snapshot': snapshot, 'wait': wait}[sys.argv[1]]()
`;

/** A file's owner and mode as the probe script saw them (or why it could not). */
export interface FileFacts {
  path: string;
  uid?: number;
  gid?: number;
  user?: string;
  group?: string;
  /** Octal, e.g. `2775`. */
  mode?: string;
  error?: string;
  /** For the socket's directory: whether the vassal (the ini's uid and gid) may create files in it. */
  writable?: boolean;
}

/** What the `snapshot` step of {@link PROBE_SCRIPT} prints. */
export interface ProbeSnapshot {
  logSize: number | null;
  logError: string | null;
  /** The vassal's uWSGI processes, `pid:starttime:ppid,...`. */
  procs: string;
  /** The vassal ini's owner and mode; null for an app server of vars.app. */
  ini: FileFacts | null;
  uid: number;
  mtime: number | null;
  now: number;
  /**
   * With `--settle-earlier S`: the ini had been touched `ago` seconds before
   * and the reload that touch started was still under way, so the snapshot
   * waited (`waited` s, at most S) until it was over (`settled`), since a
   * touch during a reload can be lost. Null when there was nothing to wait for.
   */
  earlier?: { ago: number; waited: number; settled: boolean } | null;
}

/** What reproducing the app's load as the site user found. */
export interface Reproduction {
  ok: boolean;
  /** The module loaded and had the callable. */
  loaded?: boolean;
  stage?: 'import' | 'callable' | 'call';
  type?: string;
  message?: string;
  /** The traceback's frames outside Python's import machinery, innermost last. */
  frames?: { file: string; line: number; name: string; code: string }[];
  syntax?: { file: string | null; line: number | null; offset: number | null; code: string };
  /** For a missing callable: what the module defines that could be a WSGI app. */
  candidates?: string[];
  /** The status the app answered the reproduced GET with. */
  status?: string | null;
  /** Why it could not be reproduced. */
  error?: string;
  /** What was run, to run it by hand. */
  command: string;
  python?: string;
}

/** How the `wait` step of {@link PROBE_SCRIPT} ended. */
export type ProbeKind = 'answered' | 'restarted' | 'no-app' | 'http-500' | 'gateway' | 'log' | 'dead' | 'timeout' | 'timeout-no-restart';

/** What the `wait` step of {@link PROBE_SCRIPT} prints. */
export interface ProbeOutcome {
  ok: boolean;
  kind: ProbeKind;
  reason: string;
  evidence: string | null;
  /** Where the evidence of the new instance came from. */
  source: 'log' | 'procs' | 'grace' | null;
  probe: string | null;
  status: number | null;
  body: string;
  log: string;
  logError: string | null;
  /** From the touch (the ini's mtime) to the verdict. */
  seconds: number;
  /**
   * With `--mercy-until`: nothing had restarted by the timeout, so the wait
   * went on until the reload-mercy an earlier touch may have started ran out.
   */
  waitedForMercy?: boolean;
  ini?: FileFacts | null;
  socketDir?: FileFacts;
  socketFile?: FileFacts;
  repro?: Reproduction;
  explainSeconds?: number;
}

/** A failed reload, explained: one specific line first, then the evidence. */
export interface ReloadExplanation {
  headline: string;
  detail: string[];
  /** The vassal log's explaining lines (empty when the log was not readable). */
  logLines: string[];
}

/** Where the app was asked, for the explanation's words. */
export interface ExplainContext {
  site: string;
  user: string;
  vassal: string;
  log?: string;
  healthUrl?: string;
  socket?: VassalSocket;
  /** The path the probe asked for. */
  path: string;
  /** What started the reload, as explanations say it: `the touch` (default), `the reload`. */
  since?: string;
  /** An app server that is not a uWSGI vassal (vars.app): its program's name, e.g. `gunicorn`. */
  server?: string;
}

const EXCEPTION_LINE = /^([A-Za-z_][\w.]*(?:Error|Exception|Exit|ImproperlyConfigured)): ?(.*)$/;

/**
 * Turn a failed `wait` into a headline and its detail, from the best
 * source there is: the vassal's own log where it was readable, else the
 * load reproduced as the site user, else the socket's permissions, else
 * what the probe got.
 *
 * @example
 * explainReload(outcome, { site: 'alleged', user: 'alleged', vassal, path: '/' }).headline
 * // => "alleged: the new code does not load: AttributeError: module 'alleged.wsgi' has no attribute 'application'"
 */
export function explainReload(outcome: ProbeOutcome, ctx: ExplainContext): ReloadExplanation {
  const logReadable = !!ctx.log && outcome.logError === null;
  const logLines = logReadable ? explainUwsgiLog(outcome.log) : [];
  const repro = outcome.repro;
  const since = ctx.since ?? 'the touch';
  const detail: string[] = [`${outcome.reason} (${outcome.seconds}s after ${since}).`];
  const site = ctx.site;
  // The words for what runs the app: a vassal of the emperor, or an app server of vars.app.
  const server = ctx.server ?? 'uWSGI';
  const instance = ctx.server ? `${ctx.server} (the app server)` : 'the vassal';
  let headline: string | undefined;

  const logException = [...logLines].reverse().find((line) => EXCEPTION_LINE.test(line.trim()));
  const logBind = logLines.find((line) => /\bbind\(\)/.test(line));
  const dir = outcome.socketDir;
  const sockDirBlocked = dir?.writable === false;
  const reproFailedLoad = repro && !repro.ok && (repro.stage === 'import' || repro.stage === 'callable');

  const socketHeadline = () =>
    `${site}: ${server} cannot create its socket ${ctx.socket?.address}: ${dir?.path} (${describe(dir)}) is not writable by ${instance}${outcome.ini ? `, ${outcome.ini.user}:${outcome.ini.group}` : ''}`;
  if (logBind) headline = sockDirBlocked ? socketHeadline() : `${site}: ${server} cannot bind its socket: ${logBind.trim()}`;
  else if (logException) headline = `${site}: the new code does not load: ${logException.trim()}`;
  else if (outcome.kind === 'dead' && sockDirBlocked) headline = socketHeadline();
  else if (reproFailedLoad) headline = `${site}: the new code does not load: ${exceptionText(repro)}`;
  else if (repro && !repro.ok && repro.stage === 'call') headline = `${site}: the app fails on GET ${ctx.path}: ${exceptionText(repro)}`;
  else if (outcome.kind === 'gateway' && outcome.socketFile?.mode) {
    headline = `${site}: the web server cannot use the socket ${outcome.socketFile.path} (${describe(outcome.socketFile)}): ${outcome.probe}`;
  } else if (outcome.kind === 'dead') headline = `${site}: ${instance} is not running after ${since}`;
  else if (outcome.kind === 'no-app') headline = `${site}: uWSGI loaded no app, though the code loads when reproduced`;
  else if (outcome.kind === 'log') headline = `${site}: ${server} could not load the app: ${(logLines[0] ?? '').trim()}`;
  headline ??= `${site}: ${outcome.reason}`;

  if (repro && !repro.ok && repro.stage) {
    detail.push(...traceLines(repro));
    if (repro.stage === 'callable' && repro.candidates?.length) {
      detail.push(`  (it defines ${repro.candidates.join(', ')}: point module/callable in ${ctx.vassal} at the WSGI app, or name it back)`);
    }
  }
  if (repro) {
    if (repro.error) detail.push(`Could not reproduce the load as ${ctx.user}: ${repro.error}: ${repro.command}`);
    else if (repro.ok) {
      detail.push(`Reproduced as ${ctx.user}, the code loads${repro.status ? ` and GET ${ctx.path} answers ${repro.status}` : ''}: ${repro.command}`);
    } else detail.push(`Reproduced as ${ctx.user}: ${repro.command}`);
  }
  if (sockDirBlocked && dir) {
    detail.push(
      `The socket directory ${dir.path} is ${describe(dir)}, not writable by the vassal (the ini's owner and group): a vassal that starts afresh cannot bind its socket there. ` +
        `Make it root:uwsgi 2775 (setgid, group-writable) with the vassal ini's group uwsgi.`,
    );
  }
  if (outcome.kind === 'gateway' && outcome.socketFile?.mode) {
    detail.push(
      `The socket ${outcome.socketFile.path} is ${describe(outcome.socketFile)}: the web server's user needs write permission on it ` +
        '(chmod-socket = 660 with the web server in its group, e.g. uwsgi, or chmod-socket = 666).',
    );
  } else if (outcome.kind === 'gateway' && /No such file/.test(outcome.socketFile?.error ?? '')) {
    // No socket file is no permission problem: nothing listens (gunicorn unlinks its socket when it stops).
    detail.push(`There is no socket ${outcome.socketFile!.path}: ${instance} is not listening there.`);
  }
  if (outcome.kind === 'dead' && !sockDirBlocked && !logLines.length) {
    detail.push(
      ctx.server
        ? `Its supervisor's log says why ${ctx.server} stopped; give the app server a log the site user can read (app.log in the deployfile) to see it here.`
        : "The emperor's log says why the vassal stopped; site users cannot read it. Ask root, or give the vassal a logto its user can read.",
    );
  }
  if (outcome.probe) detail.push(`Last check: ${outcome.probe}`);
  if (logLines.length > 0) {
    detail.push(`${server} log ${ctx.log} since ${since}:`, ...logLines.map((line) => `  ${line}`));
  } else if (logReadable) {
    const tail = outcome.log.split('\n').filter((l) => l.trim() !== '').slice(-10);
    detail.push(tail.length ? `${server} log ${ctx.log} since ${since}:` : `Nothing in the ${server} log ${ctx.log} since ${since}.`, ...tail.map((l) => `  ${l}`));
  } else if (ctx.log) {
    detail.push(`(The ${server} log ${ctx.log} is not readable: ${outcome.logError}.)`);
  }
  return { headline, detail, logLines };
}

function describe(facts: FileFacts | undefined): string {
  if (!facts) return 'unknown';
  if (facts.error) return facts.error;
  return `${facts.user}:${facts.group} ${facts.mode}`;
}

/** `Type: message` of a failed reproduction. */
export function exceptionText(repro: Reproduction): string {
  return repro.message ? `${repro.type}: ${repro.message}` : `${repro.type}`;
}

/** The last frame and the exception, the way Python prints them. */
export function traceLines(repro: Reproduction): string[] {
  const out: string[] = [];
  if (repro.syntax?.file) {
    const { file, line, offset, code } = repro.syntax;
    out.push(`  File "${file}", line ${line}`);
    if (code) {
      const trimmed = code.replace(/^\s+/, '');
      out.push(`    ${trimmed}`);
      if (offset) out.push(`    ${' '.repeat(Math.max(0, offset - 1 - (code.length - trimmed.length)))}^`);
    }
  } else {
    const frame = repro.frames?.at(-1);
    if (frame) {
      out.push(`  File "${frame.file}", line ${frame.line}, in ${frame.name}`);
      if (frame.code) out.push(`    ${frame.code}`);
    }
  }
  out.push(exceptionText(repro));
  return out;
}

/** The last line of `stdout` that parses as a JSON object, or undefined. */
export function lastJson<T>(stdout: string): T | undefined {
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    const text = line.trim();
    if (!text.startsWith('{')) continue;
    try {
      return JSON.parse(text) as T;
    } catch {
      // Not ours; keep looking.
    }
  }
  return undefined;
}
