/**
 * What already exists on the server for a site, read in one script as root
 * (the site user may not exist yet): its account, the groups, the files
 * provision would write and the directories it would make. Read-only; the
 * answer is one JSON object on stdout.
 */

/** One path as the server has it. */
export interface PathFact {
  /** With `~user/` expanded. */
  path: string;
  kind: 'file' | 'dir' | 'link' | 'other' | 'missing';
  owner?: string;
  group?: string;
  uid?: number;
  gid?: number;
  /** Permission bits with setgid and friends, e.g. 0o2775. */
  mode?: number;
  /** A file's text (asked for with `content`), up to 1 MiB. */
  content?: string;
  /** A link's target. */
  target?: string;
}

/** The site user's account. */
export interface UserFact {
  uid: number;
  gid: number;
  home: string;
  shell: string;
  /** The shadow password field: `locked` ('!' and the like: sshd refuses it without PAM), `star` ('*'), `hash`, `empty`. */
  password: 'locked' | 'star' | 'hash' | 'empty' | 'unknown';
}

export interface Facts {
  user: UserFact | null;
  /** gid of each group asked about, null when missing. */
  groups: Record<string, number | null>;
  /** The site user's global git `safe.directory` values. */
  safeDirectories: string[];
  paths: Record<string, PathFact>;
}

/** What to inspect: `paths` keys are the names the plan reads them by; a path may start with `~user/`. */
export interface InspectRequest {
  user: string;
  groups: string[];
  paths: Record<string, { path: string; content?: boolean }>;
}

/**
 * The script: `python3 - REQUEST_JSON` with this on stdin. Python because
 * touchVassalIni already needs it on the server, and shell has no JSON.
 */
export const INSPECT_SCRIPT = String.raw`
import grp, json, os, pwd, stat, subprocess, sys
req = json.loads(sys.argv[1])
out = {"user": None, "groups": {}, "safeDirectories": [], "paths": {}}
try:
    pw = pwd.getpwnam(req["user"])
    password = "unknown"
    try:
        with open("/etc/shadow") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if fields[0] == req["user"]:
                    p = fields[1]
                    password = "empty" if p == "" else "star" if p == "*" else "locked" if p in ("!", "!!", "!*") or p.startswith("!") else "hash"
    except OSError:
        pass
    out["user"] = {"uid": pw.pw_uid, "gid": pw.pw_gid, "home": pw.pw_dir, "shell": pw.pw_shell, "password": password}
    home = pw.pw_dir
except KeyError:
    home = "/home/" + req["user"]
for name in req["groups"]:
    try:
        out["groups"][name] = grp.getgrnam(name).gr_gid
    except KeyError:
        out["groups"][name] = None
gitconfig = os.path.join(home, ".gitconfig")
if os.path.exists(gitconfig):
    r = subprocess.run(["git", "config", "--file", gitconfig, "--get-all", "safe.directory"], capture_output=True, text=True)
    out["safeDirectories"] = [l for l in r.stdout.split("\n") if l]
def name_of(fn, ident):
    try:
        return fn(ident)[0]
    except KeyError:
        return str(ident)
for key, spec in req["paths"].items():
    path = spec["path"]
    prefix = "~" + req["user"] + "/"
    if path.startswith(prefix):
        path = os.path.join(home, path[len(prefix):])
    fact = {"path": path, "kind": "missing"}
    try:
        st = os.lstat(path)
        fact["kind"] = "link" if stat.S_ISLNK(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
        fact.update(uid=st.st_uid, gid=st.st_gid, mode=stat.S_IMODE(st.st_mode), owner=name_of(pwd.getpwuid, st.st_uid), group=name_of(grp.getgrgid, st.st_gid))
        if fact["kind"] == "link":
            fact["target"] = os.readlink(path)
        if fact["kind"] == "file" and spec.get("content"):
            with open(path, "rb") as f:
                fact["content"] = f.read(1 << 20).decode("utf-8", "replace")
    except FileNotFoundError:
        pass
    except NotADirectoryError:
        pass
    out["paths"][key] = fact
print(json.dumps(out))
`;

/** The last line of stdout that parses as the script's answer. */
export function parseFacts(stdout: string): Facts | undefined {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    const value = JSON.parse(line) as Facts;
    return value && typeof value === 'object' && 'paths' in value ? value : undefined;
  } catch {
    return undefined;
  }
}
