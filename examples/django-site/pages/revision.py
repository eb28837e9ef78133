"""Which git revision of the code is running."""
import os
import re
import subprocess
import sys

UNKNOWN = 'unknown'


def read_revision(code_dir):
    """Return `git rev-parse HEAD` for code_dir, or 'unknown' if it is not a checkout."""
    env = dict(os.environ)
    # Stop git from walking up into an enclosing repository (such as the
    # deployfile repo itself): only code_dir's own checkout counts.
    env['GIT_CEILING_DIRECTORIES'] = os.path.dirname(os.path.abspath(code_dir))
    try:
        result = subprocess.run(
            ['git', 'rev-parse', 'HEAD'], cwd=code_dir, env=env,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError) as error:
        reason = str(error)  # no git binary, missing dir, hung git
    else:
        sha = result.stdout.strip()
        if result.returncode == 0 and re.fullmatch(r'[0-9a-f]{40}|[0-9a-f]{64}', sha):
            return sha
        reason = result.stderr.strip()
    # A checkout that git refuses to read (typically "detected dubious
    # ownership" when the code dir belongs to another user than the process)
    # would otherwise show up only as 'unknown': say why in the server log.
    if os.path.exists(os.path.join(code_dir, '.git')):
        print(f'pages: cannot read git revision of {code_dir}: {reason}', file=sys.stderr)
    return UNKNOWN
