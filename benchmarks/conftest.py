# Benchmarks live here; pytest-agentbench is loaded through its pytest11 entry point.
