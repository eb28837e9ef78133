#!/usr/bin/env bash
# The floor for tools that start one `ssh` process per command: plain
# OpenSSH, ONE ControlMaster connection per site (opened first, closed at
# the end), every site in the background at once. Each command is its own
# `ssh` process multiplexed over the master, as Ansible, Shipit or a shell
# loop would run it.
#
#   openssh.sh MODE PORT KEY KNOWN_HOSTS SITE...
#     MODE recipe   the remote part of the deploy recipe, every step
#     MODE true:N   N sequential `true` per site
#     MODE shells:N one command per site, a /bin/sh that starts the user's
#                   login shell N times in a row (`"$SHELL" -c true`): not a
#                   peer, the least any tool that runs each command in the
#                   user's login shell, as a session does, can cost the server
#
# Vassals are in /etc/uwsgi/deployfile-bench.d (the bench emperor's dir).
# Host keys are verified (StrictHostKeyChecking=yes against KNOWN_HOSTS);
# only KEY is offered. Sites are Unix users on 127.0.0.1.
set -euo pipefail

mode=$1 port=$2 key=$3 known=$4
shift 4
ctl_dir=$(mktemp -d /tmp/dfb-ssh.XXXXXX)
trap 'rm -rf "$ctl_dir"' EXIT
opts=(-F /dev/null -p "$port" -i "$key" -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes
  -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$known")

site() {
  local u=$1 ctl=$ctl_dir/$1 try
  # A stock sshd (MaxStartups 10:30:100) drops some of many handshakes
  # started at once; retry with a randomized backoff, as the other tools do.
  for try in 1 2 3 4 5 6 7 8; do
    if ssh "${opts[@]}" -o ControlMaster=yes -o "ControlPath=$ctl" -o ControlPersist=yes -fN "$u@127.0.0.1" 2>/dev/null; then
      break
    fi
    if [[ $try == 8 ]]; then
      echo "$u: could not connect" >&2
      return 1
    fi
    sleep "$((try / 3)).$((RANDOM % 10))"
  done
  r() { ssh "${opts[@]}" -o "ControlPath=$ctl" "$u@127.0.0.1" "$1"; }

  case $mode in
    recipe)
      local code="/home/$u/Sites/$u" venv=". /home/$u/virtualenvs/$u/bin/activate"
      r "cd $code && mkdir -p static caches/django"
      r "cd $code && git pull --ff-only"
      r "cd $code && cp example_site/settings_production.py example_site/settings.py"
      r "cd $code && $venv && pip install -q --no-index --disable-pip-version-check -r REQUIREMENTS"
      r "cd $code && $venv && ./manage.py collectstatic --noinput"
      r "touch /etc/uwsgi/deployfile-bench.d/$u.ini"
      ;;
    true:*)
      local i n=${mode#true:}
      for ((i = 0; i < n; i++)); do r true; done
      ;;
    shells:*)
      local n=${mode#shells:}
      # The loop in /bin/sh, not in the login shell sshd started: forking
      # dash costs a fraction of forking bash, and a tool's remote side can
      # be that cheap (deployfile's shared shell is /bin/sh).
      # shellcheck disable=SC2016 # expanded by the remote shells
      r 'exec /bin/sh -c '\''i=0; while [ "$i" -lt '"$n"' ]; do "$SHELL" -c true || exit; i=$((i + 1)); done'\'
      ;;
    *)
      echo "unknown mode $mode" >&2
      return 2
      ;;
  esac
  ssh "${opts[@]}" -o "ControlPath=$ctl" -O exit "$u@127.0.0.1" 2>/dev/null
}

pids=()
for u in "$@"; do
  site "$u" &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
