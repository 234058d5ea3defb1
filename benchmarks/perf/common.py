"""What the timing scripts here share: the command that runs the shipped suites (`pytest benchmarks`, quiet, no cache
folder), so every script measures the same command line."""

import sys

#: `python -m pytest benchmarks` with this Python (the project's .venv when the script runs from it)
PYTEST_BENCHMARKS = [sys.executable, "-m", "pytest", "benchmarks"]
#: quiet, and no .pytest_cache written by a timed run
QUIET = ["-q", "-p", "no:cacheprovider"]
