#!/bin/sh
# The floor of case 4, with no deploy tool: what any deploy that runs the
# tests and then waits for the new apps cannot go below on this machine.
# It runs the seed recipe's tests in the operator's checkout, touches every
# site's vassal ini at once, and returns when the emperor has said of each
# that its new instance is "ready to accept requests" (so it is even less
# than a verdict: no request is made). Nothing is pulled, nothing changes:
# the apps reload the code they already have, which costs them the same.
#
#   reload-only.sh LOCAL_DIR EMPEROR_LOG VASSAL_DIR site...
set -eu
local_dir=$1 log=$2 vassals=$3
shift 3

(cd "$local_dir" && ./manage.py test pages >/dev/null 2>&1) || {
  echo "reload-only: the tests failed in $local_dir" >&2
  exit 1
}

# Only what the emperor logs from here on counts.
offset=$(wc -c <"$log")
for site; do touch "$vassals/$site.ini"; done

# The emperor scans every 3 s; a reload of ten Django apps on two cores takes
# seconds more. 120 s is far beyond either: past it, something is broken.
deadline=$(($(date +%s) + 120))
while :; do
  fresh=$(tail -c +"$((offset + 1))" "$log")
  waiting=''
  for site; do
    case $fresh in
    *"vassal $site.ini is ready to accept requests"*) ;;
    *) waiting="$waiting $site" ;;
    esac
  done
  [ -z "$waiting" ] && exit 0
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "reload-only: not ready after 120 s:$waiting" >&2
    exit 1
  fi
  sleep 0.05
done
