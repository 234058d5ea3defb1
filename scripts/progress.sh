# Sourced by the set-up scripts: a long step says what it does, shows it is alive, and says how long it took.
#   run_step "what it does" LOG command [args...]
# runs the command with its output in LOG, prints "NAME: what it does ...", then every ${PROGRESS_EVERY:-30} s a line
# with the time so far and the log's last progress line (cmake's "[ 45%] ..."), and at the end the time it took; on
# failure the log's last 20 lines, and the command's exit status.
run_step() {
  local what=$1 log=$2 name=${0##*/} every=${PROGRESS_EVERY:-30}
  shift 2
  local started=$SECONDS next=$((SECONDS + every)) status=0 pid last
  echo "$name: $what ..."
  "$@" >"$log" 2>&1 &
  pid=$!
  trap 'kill "$pid" 2>/dev/null; exit 130' INT TERM
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ "$SECONDS" -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
      next=$((SECONDS + every))
      last=$(grep -aE '^\[ *[0-9]+%\]' "$log" | tail -n 1 || true)
      [ -n "$last" ] || last=$(tail -n 1 "$log" 2>/dev/null || true)
      echo "$name: $what: $(_elapsed "$started") so far${last:+; ${last:0:100}}"
    fi
  done
  wait "$pid" || status=$?
  trap - INT TERM
  if [ "$status" -ne 0 ]; then
    echo "$name: $what failed after $(_elapsed "$started") (exit $status); the last lines of $log:" >&2
    tail -n 20 "$log" >&2
    return "$status"
  fi
  echo "$name: $what: done in $(_elapsed "$started")"
}

_elapsed() {
  local s=$((SECONDS - $1))
  if [ "$s" -ge 60 ]; then echo "$((s / 60))m$((s % 60))s"; else echo "${s}s"; fi
}
