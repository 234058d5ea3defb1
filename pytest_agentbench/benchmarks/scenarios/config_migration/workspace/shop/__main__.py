from .app import describe

print(describe())
