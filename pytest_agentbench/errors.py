"""Two kinds of trouble, kept apart so a report never blames a model for the harness."""


class AgentbenchError(Exception):
    """Bad input from the user (models.yaml, --model, a dataset): shown as one line, run stops."""


class HarnessError(Exception):
    """The harness itself failed (backend crash, sandbox infrastructure): a pytest error, never a model failure."""


class AgentbenchWarning(UserWarning):
    """Something the run did differently from what was asked, and recorded (an engine that is not installed)."""


def first_line(text: str) -> str:
    """Up to the first newline. Not str.splitlines(): that also splits at U+2028, U+0085 and other characters a
    program's output can carry, and would cut a reason short."""
    return text.strip().split("\n", 1)[0].rstrip("\r")


def one_line(exc: BaseException, limit: int = 300) -> str:
    """First line of an exception, prefixed by its type, short enough for a terminal line."""
    text = first_line(str(exc))
    head = type(exc).__name__
    line = f"{head}: {text}" if text else head
    return line if len(line) <= limit else line[: limit - 3] + "..."
