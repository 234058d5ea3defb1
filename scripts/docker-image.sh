#!/usr/bin/env bash
# Build the Docker sandbox image offline: a Debian rootfs with Python (and sympy for the tool-use suite)
# made by debootstrap from the Debian mirror, imported with `docker import`. No registry is needed.
# git and pytest serve the agent scenarios (the workspace is a git repository; hidden checks use pytest.raises).
# Usage: scripts/docker-image.sh [IMAGE]   (default agentbench-python:bookworm-2)
set -euo pipefail
. "$(dirname "$0")/progress.sh"
IMAGE=${1:-agentbench-python:bookworm-2}
if docker image inspect "$IMAGE" >/dev/null 2>&1; then echo "$IMAGE exists"; exit 0; fi
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
MIRROR=$(grep -rhoE 'https?://[^ ]*debian\.org/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -n1 || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOTFS=$(mktemp -d)
LOGS=$(mktemp -d)
trap 'rm -rf "$ROOTFS" "$LOGS"' EXIT
echo "docker-image.sh: building $IMAGE from Debian bookworm ($MIRROR), no registry (a few minutes)"
run_step "debootstrap: a minimal Debian with python3, sympy, pytest and git" "$LOGS/debootstrap.log" \
  debootstrap --variant=minbase --include=python3,python-is-python3,python3-sympy,python3-pytest,git bookworm \
  "$ROOTFS" "$MIRROR"
run_step "docker import as $IMAGE" "$LOGS/import.log" sh -c 'tar -C "$1" -c . | docker import - "$2"' sh "$ROOTFS" "$IMAGE"
echo "built $IMAGE"
