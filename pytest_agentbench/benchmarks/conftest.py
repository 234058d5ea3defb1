# Benchmarks live here; pytest-agentbench is loaded through its pytest11 entry point.

# The scenarios' workspaces carry their own tests (what an agent runs inside its sandbox, and the hidden checks):
# they are data of the scenarios suite, never tests of this session.
collect_ignore_glob = ["scenarios/*"]
