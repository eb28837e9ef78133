import { sh, type Context } from '../../src/index.ts';

/** How a site is asked through nginx: from the server itself, with its server block's name as Host. */
export interface SiteCheck {
  url: string;
  host: string;
}

/** What the check saw. */
export interface CheckOutcome {
  ok: boolean;
  /** `HTTP 200`, or why there was no answer. */
  answer: string;
  seconds: number;
}

/**
 * `python3 - URL HOST TIMEOUT` on the server: GET the URL with that Host
 * header until it answers 2xx or 3xx (redirects not followed) or the time
 * is up; the last line is JSON. Python, as touchVassalIni needs it there
 * anyway and curl may be missing.
 */
export const CHECK_SCRIPT = String.raw`
import json, sys, time, urllib.error, urllib.request
url, host, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
class Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
opener = urllib.request.build_opener(Keep)
start = time.time()
while True:
    try:
        with opener.open(urllib.request.Request(url, headers={"Host": host}), timeout=5) as r:
            status, answer = r.status, "HTTP %d" % r.status
    except urllib.error.HTTPError as e:
        status, answer = e.code, "HTTP %d" % e.code
    except Exception as e:
        status, answer = 0, str(getattr(e, "reason", e))
    ok = 200 <= status < 400
    if ok or time.time() - start >= timeout:
        print(json.dumps({"ok": ok, "answer": answer, "seconds": round(time.time() - start, 1)}))
        break
    time.sleep(0.5)
`;

/** Ask the site through nginx, from the server, for up to `timeoutSeconds`. */
export async function checkSite(c: Context, check: SiteCheck, timeoutSeconds: number): Promise<CheckOutcome> {
  const result = await c.warnOnly().run(sh`python3 - ${check.url} ${check.host} ${String(timeoutSeconds)}`, {
    quiet: true,
    stdin: CHECK_SCRIPT,
    label: `GET ${check.url} (Host: ${check.host}) from the server, until it answers (at most ${timeoutSeconds}s)`,
  });
  try {
    return JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '') as CheckOutcome;
  } catch {
    return { ok: false, answer: `the check did not run: ${(result.stderr || result.stdout).trim().split('\n').at(-1) || `exit code ${result.exitCode}`}`, seconds: 0 };
  }
}
