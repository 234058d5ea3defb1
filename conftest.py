# The project's own tests drive pytest in a subprocess-free way through `pytester`.
pytest_plugins = ["pytester"]
