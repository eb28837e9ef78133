/**
 * What the task library knows about uWSGI: reading a vassal's ini, picking
 * the lines of its log that explain a failed start, and the small Python
 * program `touchVassalIni` runs on the server to watch a reload.
 */

/** A socket a vassal listens on, as its ini declares it. */
export interface VassalSocket {
  /** `uwsgi` for `socket =`/`uwsgi-socket =`, `http` for `http-socket =`. */
  protocol: 'uwsgi' | 'http';
  /** A unix socket path, or `host:port` (`:port` meaning every interface). */
  address: string;
}

/** What `touchVassalIni` needs from a vassal ini. */
export interface VassalInfo {
  socket?: VassalSocket;
  /** From `logto`, `logto2`, `daemonize`, `daemonize2` or `logger = file:`. */
  log?: string;
}

const SOCKET_KEYS: Record<string, VassalSocket['protocol']> = { socket: 'uwsgi', 'uwsgi-socket': 'uwsgi', 'http-socket': 'http' };
const LOG_KEYS = new Set(['logto', 'logto2', 'daemonize', 'daemonize2']);

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
  const placeholders = new Map<string, string>();
  let section = 'uwsgi';
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.*)\]$/.exec(line);
    if (header) {
      section = (header[1] as string).trim();
      continue;
    }
    if (section !== 'uwsgi') continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = expandMagic(line.slice(eq + 1).trim(), iniPath, placeholders);
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
  }
  return info;
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
 * `snapshot` records what "before the touch" looks like: the log's size and
 * the processes holding the vassal's listening socket. It also waits (at
 * most 2s) until the clock's second is past the ini's mtime: the emperor
 * only reloads when the mtime, in whole seconds, grows, so a touch within
 * the same second as the previous one would be lost.
 *
 * `wait` polls until the *new* instance answers: first evidence of the
 * reload (a `*** Starting uWSGI` line in the log after the recorded size,
 * or, without a log, a process holding the socket that did not before),
 * then a probe (the health URL, else a request over the socket) that gets a
 * response below 500 (below 400 for a health URL). It gives up early when
 * the log says the app failed to load. It prints one JSON line.
 */
export const PROBE_SCRIPT = String.raw`
import json, os, socket, struct, sys, time

def args():
    out, argv = {}, sys.argv[2:]
    for i in range(0, len(argv) - 1, 2):
        out[argv[i].lstrip('-')] = argv[i + 1]
    return out

A = args()
LOG_LIMIT = 65536

def is_unix(addr):
    return '/' in addr or not addr.rpartition(':')[2].isdigit()

def listening_inodes(addr):
    found = set()
    if is_unix(addr):
        with open('/proc/net/unix') as f:
            next(f)
            for line in f:
                p = line.split()
                if len(p) >= 8 and p[7] == addr and int(p[3], 16) & 0x10000:
                    found.add(p[6])
    else:
        port = int(addr.rpartition(':')[2])
        for name in ('/proc/net/tcp', '/proc/net/tcp6'):
            try:
                with open(name) as f:
                    next(f)
                    for line in f:
                        p = line.split()
                        if len(p) >= 10 and p[3] == '0A' and int(p[1].rpartition(':')[2], 16) == port:
                            found.add(p[9])
            except OSError:
                pass
    return found

def holders(addr):
    if not addr:
        return []
    try:
        inodes = listening_inodes(addr)
    except OSError:
        return []
    pids = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            for fd in os.listdir('/proc/%s/fd' % d):
                link = os.readlink('/proc/%s/fd/%s' % (d, fd))
                if link.startswith('socket:[') and link[8:-1] in inodes:
                    pids.append(int(d))
                    break
        except OSError:
            continue
    return sorted(pids)

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

def status_line(s):
    data = b''
    while b'\n' not in data and len(data) < 8192:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    first = data.split(b'\n', 1)[0].decode('latin-1').strip()
    parts = first.split()
    if len(parts) >= 2 and parts[0].startswith('HTTP/') and parts[1].isdigit():
        return int(parts[1]), first
    return None, first or 'connection closed without a response'

def probe_socket(proto, addr, timeout):
    s = connect(addr, timeout)
    try:
        if proto == 'http':
            s.sendall(b'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n')
        else:
            env = {'REQUEST_METHOD': 'GET', 'REQUEST_URI': '/', 'PATH_INFO': '/', 'QUERY_STRING': '',
                   'SERVER_NAME': 'localhost', 'SERVER_PORT': '80', 'SERVER_PROTOCOL': 'HTTP/1.0',
                   'HTTP_HOST': 'localhost', 'REMOTE_ADDR': '127.0.0.1'}
            body = b''
            for k, v in env.items():
                k, v = k.encode(), v.encode()
                body += struct.pack('<H', len(k)) + k + struct.pack('<H', len(v)) + v
            s.sendall(struct.pack('<BHB', 0, len(body), 0) + body)
        code, first = status_line(s)
    finally:
        s.close()
    return code is not None and code < 500, first

def probe_url(url, timeout):
    import urllib.request, urllib.error
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status < 400, 'HTTP %d from %s' % (r.status, url)
    except urllib.error.HTTPError as e:
        return False, 'HTTP %d from %s' % (e.code, url)

def snapshot():
    size, err = log_size(A['log']) if A.get('log') else (None, None)
    st = os.stat(A['ini'])
    waited = 0.0
    while int(time.time()) <= int(st.st_mtime) and waited < 2:
        time.sleep(0.1)
        waited += 0.1
    print(json.dumps({'logSize': size, 'logError': err, 'pids': holders(A.get('socket')),
                      'mtime': st.st_mtime, 'now': time.time()}))

STARTING = '*** Starting uWSGI'
FATAL = ('unable to load app', 'no app loaded', 'bind(): ')

def wait():
    timeout, interval = float(A['timeout']), float(A['interval'])
    deadline = time.time() + timeout
    started = time.time()
    log, offset = A.get('log'), int(A.get('log-offset') or 0)
    addr, proto, url = A.get('socket'), A.get('protocol', 'uwsgi'), A.get('url')
    before = set(int(p) for p in A.get('pids', '').split(',') if p)
    evidence, probe, text, log_error = None, None, '', None
    while True:
        if log:
            got, log_error = read_log(log, offset)
            text = got if got is not None else text
            at = text.find(STARTING)
            if evidence is None and at >= 0:
                evidence = 'uWSGI restarted (log)'
            if at >= 0 and any(f in text[at:] for f in FATAL):
                time.sleep(min(interval, 0.5))
                got, _ = read_log(log, offset)
                text = got if got is not None else text
                return done(False, 'uWSGI could not load the app', evidence, probe, text, log_error, started)
        if evidence is None and addr and not (log and log_error is None):
            fresh = [p for p in holders(addr) if p not in before]
            if fresh:
                evidence = 'new uWSGI processes hold the socket (pids %s)' % ','.join(map(str, fresh))
        if evidence is None and not (log and log_error is None) and time.time() - started >= float(A.get('grace', 5)):
            evidence = 'no log to tell the new instance from the old one; probed after %ss' % A.get('grace', 5)
        if evidence is not None and (url or addr):
            try:
                left = max(0.5, min(5.0, deadline - time.time()))
                ok, probe = probe_url(url, left) if url else probe_socket(proto, addr, left)
                if ok:
                    return done(True, 'answered', evidence, probe, text, log_error, started)
            except Exception as e:
                probe = '%s: %s' % (type(e).__name__, e)
        if evidence is not None and not (url or addr):
            return done(True, 'restarted (nothing to probe)', evidence, probe, text, log_error, started)
        if time.time() >= deadline:
            reason = ('the app did not answer in time' if evidence else
                      'no sign of a restart in time (was the ini touched? is the emperor watching it?)')
            return done(False, reason, evidence, probe, text, log_error, started)
        time.sleep(interval)

def done(ok, reason, evidence, probe, text, log_error, started):
    print(json.dumps({'ok': ok, 'reason': reason, 'evidence': evidence, 'probe': probe, 'log': text,
                      'logError': log_error, 'seconds': round(time.time() - started, 1)}))

{'snapshot': snapshot, 'wait': wait}[sys.argv[1]]()
`;

/** What the `snapshot` step of {@link PROBE_SCRIPT} prints. */
export interface ProbeSnapshot {
  logSize: number | null;
  logError: string | null;
  pids: number[];
  mtime: number;
  now: number;
}

/** What the `wait` step of {@link PROBE_SCRIPT} prints. */
export interface ProbeOutcome {
  ok: boolean;
  reason: string;
  evidence: string | null;
  probe: string | null;
  log: string;
  logError: string | null;
  seconds: number;
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
