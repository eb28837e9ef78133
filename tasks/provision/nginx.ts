/**
 * The nginx step as one `sh -c` script, so it is never left half-way (INT,
 * TERM and HUP are ignored, as in pull's switch): nginx's configuration
 * must pass its test before anything is written; the new server block is
 * written beside the live one and moved into place (the previous file kept
 * as `<file>.deployfile-old`), the link made; then the test again. When it
 * fails, the previous file is put back (or the new one removed, and the link)
 * and nginx is not reloaded: the running nginx and the other sites never see
 * the broken block. Only a passing test is followed by the reload.
 *
 * Arguments: $1 the server block's file, $2 the link to make ('' for none),
 * $3 the test command, $4 the reload command, $5 1 to write the file (its
 * text on stdin), 0 to only link. Exit 0 reloaded; 10 the test failed
 * before any change; 11 the file could not be written; 12 the link could
 * not be made; 13 the test failed with the new block (undone); 14 the reload
 * failed after a passing test. What happened is on stdout.
 */
export const NGINX_SCRIPT = [
  "trap '' INT TERM HUP",
  'f="$1"; link="$2"; check="$3"; reload="$4"; write="$5"; new="$f.deployfile-new"; old="$f.deployfile-old"',
  'if ! out=$(sh -c "$check" 2>&1); then echo "nginx -t fails before any change, so nothing was written (fix that first):"; echo "$out"; exit 10; fi',
  'had=; if [ -e "$f" ]; then had=1; fi',
  'undo() { if [ -n "$linked" ]; then rm -f "$link"; fi; if [ "$write" = 1 ]; then if [ -n "$had" ]; then mv -f "$old" "$f"; else rm -f "$f"; fi; fi; }',
  'linked=',
  'if [ "$write" = 1 ]; then',
  '  if ! { cat > "$new" && chmod 0644 "$new"; }; then rm -f "$new"; echo "could not write $new; nothing changed"; exit 11; fi',
  '  if [ -n "$had" ] && ! cp -p "$f" "$old"; then rm -f "$new"; echo "could not keep a copy of $f; nothing changed"; exit 11; fi',
  '  if ! mv -f "$new" "$f"; then rm -f "$new" "$old"; echo "could not move $new to $f; nothing changed"; exit 11; fi',
  'fi',
  'if [ -n "$link" ]; then if ln -s "$f" "$link"; then linked=1; else undo; echo "could not link $link to $f; put back as it was"; exit 12; fi; fi',
  'if out=$(sh -c "$check" 2>&1); then',
  '  rm -f "$old"',
  '  if rout=$(sh -c "$reload" 2>&1); then echo "nginx -t passed; nginx reloaded"; exit 0; fi',
  '  echo "nginx -t passed with the new server block, but the reload failed:"; echo "$rout"; exit 14',
  'fi',
  'undo',
  'echo "nginx -t failed with the new server block:"; echo "$out"',
  'if sh -c "$check" >/dev/null 2>&1; then echo "the previous configuration is back and passes nginx -t; nginx was not reloaded"; else echo "the previous configuration is back but nginx -t still fails; nginx was not reloaded"; fi',
  'exit 13',
].join('\n');

/**
 * The vassal written atomically: to `<vassal>.deployfile-new` (a name the
 * emperor does not watch), owned and moded, then moved over the ini. The
 * emperor never sees a half-written or root-owned vassal. $1 the ini, $2
 * `user:group`; the text on stdin.
 */
export const VASSAL_SCRIPT = [
  "trap '' INT TERM HUP",
  'v="$1"; tmp="$1.deployfile-new"; umask 022',
  // $? after a failed `if` without else is 0: the status is taken in the else branch.
  'if cat > "$tmp" && chown "$2" "$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$v"; then exit 0; else rc=$?; fi',
  'rm -f "$tmp"; exit $rc',
].join('\n');
