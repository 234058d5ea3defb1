#!/usr/bin/env bash
# Install and start a local Docker engine (Debian's docker.io) when none answers; used by CI.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
command -v dockerd >/dev/null || { apt-get update -qq && apt-get install -y -qq docker.io >/dev/null; }
nohup dockerd >/tmp/dockerd.log 2>&1 &
for _ in $(seq 60); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done
echo "dockerd did not start: $(tail -n 3 /tmp/dockerd.log)" >&2
exit 1
