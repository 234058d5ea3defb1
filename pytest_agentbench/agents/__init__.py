"""Agents: the only place where a model and code meet (backend + sandbox + tools -> Outcome)."""
