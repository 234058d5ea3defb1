"""Generate pytest_agentbench/benchmarks/data/tool_use.jsonl: when should a code model use a tool? (deterministic, seeded)

    python pytest_agentbench/benchmarks/data/make_tool_use.py            # rewrite the dataset
    python pytest_agentbench/benchmarks/data/make_tool_use.py --check    # regenerate in memory, verify, compare byte for byte

Five categories, 50 tasks each, every one auto-gradable and every ground truth computed here (and checked
again by `verify`): pure reasoning (multiple choice, optimal: no tool), execution required (exact values,
optimal: code_executor), symbolic (sympy-checked expressions, optimal: symbolic_math), ambiguous
(several acceptable tools) and multi-step (execute -> analyze -> execute; needs the tool at least twice).
Each task carries the reference conversation a perfect model would have (the `reference` backend).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import random
import sys
from pathlib import Path

import sympy as sp

SEED = 20261122
PER_CATEGORY = 50
OUT = Path(__file__).with_name("tool_use.jsonl")
DIFFICULTIES = ("easy", "intermediate", "complex")
FINAL_HINT = " End with a line `FINAL: <answer>`."


def run_code(code: str) -> str:
    """What a program prints (trusted: these are the generator's own programs)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})
    return out.getvalue().strip()


def call(tool: str, **args) -> str:
    return "TOOL_CALL: " + json.dumps({"tool": tool, "args": args}, sort_keys=True)


def task(
    category,
    n,
    difficulty,
    prompt,
    optimal,
    truth,
    answer_type,
    reasoning,
    reference,
    alternatives=(),
    min_tool_calls=0,
    check=None,
):
    return {
        "id": f"tool_use/{category}/{n:03d}",
        "category": category,
        "difficulty": difficulty,
        "prompt": prompt + FINAL_HINT,
        "optimal_tool": optimal,
        "alternative_tools": list(alternatives),
        "reasoning": reasoning,
        "ground_truth_output": truth,
        "answer_type": answer_type,
        "min_tool_calls": min_tool_calls,
        "reference": reference,
        "check": check,
    }


# -- pure reasoning: multiple choice, answered by reading --------------------------------------------
COMPLEXITY = [
    ("def f(a):\n    return a[0]", "O(1)"),
    ("def f(a):\n    t = 0\n    for x in a:\n        t += x\n    return t", "O(n)"),
    (
        "def f(a):\n    for x in a:\n        for y in a:\n            if x + y == 0:\n                return True\n    return False",
        "O(n^2)",
    ),
    (
        "def f(a, x):\n    lo, hi = 0, len(a)\n    while lo < hi:\n        mid = (lo + hi) // 2\n        if a[mid] < x:\n            lo = mid + 1\n        else:\n            hi = mid\n    return lo",
        "O(log n)",
    ),
    ("def f(a):\n    return sorted(a)[len(a) // 2]", "O(n log n)"),
]
ORDERS = ["O(1)", "O(log n)", "O(n)", "O(n log n)", "O(n^2)"]


def choice(rng, correct, distractors):
    options = [correct] + [d for d in dict.fromkeys(distractors) if d != correct][:3]
    rng.shuffle(options)
    letters = "ABCD"
    text = "\n".join(f"{letters[i]}) {o}" for i, o in enumerate(options))
    return text, letters[options.index(correct)]


def pure_reasoning(rng, n):
    kind = n % 3
    if kind == 0:  # what does it print (small numbers: read, don't run)
        a, b, k = rng.randint(1, 5), rng.randint(0, 3), rng.randint(2, 4)
        code = f"x = {a}\nfor i in range({k}):\n    x = x * 2 - {b}\nprint(x)"
        correct = run_code(code)
        v = int(correct)
        options, letter = choice(rng, correct, [str(v + b), str(v * 2), str(v - 1), str(v + 2)])
        prompt = f"Without running it, what does this code print?\n```python\n{code}\n```\n{options}\nAnswer with the letter."
        return task(
            "pure_reasoning",
            n,
            DIFFICULTIES[k - 2],
            prompt,
            "none",
            letter,
            "choice",
            "a few iterations of simple arithmetic: trace it by reading",
            (f"FINAL: {letter}",),
            check={"kind": "choice_print", "code": code, "options": options},
        )
    if kind == 1:  # complexity
        code, order = COMPLEXITY[(n // 3) % len(COMPLEXITY)]
        options, letter = choice(rng, order, rng.sample([o for o in ORDERS if o != order], 3))
        prompt = f"What is the time complexity of f in the length n of its input?\n```python\n{code}\n```\n{options}\nAnswer with the letter."
        return task(
            "pure_reasoning",
            n,
            "intermediate" if "while" in code or "sorted" in code else "easy",
            prompt,
            "none",
            letter,
            "choice",
            "asymptotic complexity is read from the loop structure",
            (f"FINAL: {letter}",),
            check={"kind": "choice_value", "value": order, "options": options},
        )
    start, stop, step = rng.randint(0, 9), rng.randint(20, 60), rng.randint(2, 7)
    expr = f"len(range({start}, {stop}, {step}))"
    correct = str(eval(expr))
    v = int(correct)
    options, letter = choice(rng, correct, [str(v + 1), str(v - 1), str((stop - start) // step), str(v + 2)])
    prompt = f"What does `{expr}` evaluate to in Python 3?\n{options}\nAnswer with the letter."
    return task(
        "pure_reasoning",
        n,
        "easy" if step == 2 else "intermediate",
        prompt,
        "none",
        letter,
        "choice",
        "range semantics: ceil((stop - start) / step)",
        (f"FINAL: {letter}",),
        check={"kind": "choice_print", "code": f"print({expr})", "options": options},
    )


# -- execution required: exact values that are impractical by hand --------------------------------------
def execution(rng, n):
    kind = n % 5
    if kind == 0:
        limit = rng.randint(20_000, 200_000)
        prompt = f"What is the sum of all prime numbers below {limit}?"
        code = (
            f"N = {limit}\nsieve = bytearray([1]) * N\nsieve[0:2] = b'\\x00\\x00'\n"
            "for i in range(2, int(N ** 0.5) + 1):\n    if sieve[i]:\n        sieve[i*i::i] = bytearray(len(sieve[i*i::i]))\n"
            "print(sum(i for i in range(N) if sieve[i]))"
        )
        diff = "intermediate"
    elif kind == 1:
        k, m = rng.randint(200, 2000), rng.choice([1_000_000_007, 998_244_353, 10**9 + 9])
        prompt = f"What is Fibonacci number F({k}) (with F(1) = F(2) = 1) modulo {m}?"
        code = f"a, b = 0, 1\nfor _ in range({k}):\n    a, b = b, (a + b) % {m}\nprint(a)"
        diff = "easy"
    elif kind == 2:
        word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(6, 14)))
        prompt = f"What are the first 12 hexadecimal characters of the SHA-256 digest of the ASCII string '{word}'?"
        code = f"import hashlib\nprint(hashlib.sha256({word!r}.encode()).hexdigest()[:12])"
        diff = "easy"
    elif kind == 3:
        start = rng.randint(10**6, 10**7)
        prompt = f"How many steps does the Collatz sequence starting at {start} take to reach 1?"
        code = f"x, s = {start}, 0\nwhile x != 1:\n    x = x // 2 if x % 2 == 0 else 3 * x + 1\n    s += 1\nprint(s)"
        diff = "intermediate"
    else:
        top, k = rng.randint(50_000, 500_000), rng.randint(7, 13)
        prompt = f"How many integers from 1 to {top} inclusive have a digit sum divisible by {k}?"
        code = f"print(sum(1 for i in range(1, {top} + 1) if sum(map(int, str(i))) % {k} == 0))"
        diff = "complex"
    truth = run_code(code)
    return task(
        "execution",
        n,
        diff,
        prompt,
        "code_executor",
        truth,
        "exact",
        "an exact result of a long computation: run code",
        (call("code_executor", code=code), f"FINAL: {truth}"),
        check={"kind": "code", "code": code},
    )


# -- symbolic: canonical answers checked for equivalence with sympy ----------------------------------------
X = sp.Symbol("x")


def symbolic(rng, n):
    kind = n % 4
    c = [rng.randint(1, 9) for _ in range(4)]
    if kind == 0:
        expr = c[0] * X ** c[1] * sp.sin(c[2] * X) + c[3] * sp.exp(X)
        op, prompt = "diff", f"Differentiate f(x) = {sp.sstr(expr)} with respect to x."
        result = sp.diff(expr, X)
        diff = "intermediate"
    elif kind == 1:
        expr = c[0] * X**3 + c[1] * X**2 * sp.cos(X) + c[2]
        op, prompt = "integrate", f"Find an antiderivative of {sp.sstr(expr)} with respect to x (no constant)."
        result = sp.integrate(expr, X)
        diff = "complex"
    elif kind == 2:
        r1, r2 = sorted(rng.sample(range(-9, 10), 2))
        expr = sp.expand(c[0] * (X - r1) * (X - r2))
        op, prompt = (
            "solve",
            f"Solve {sp.sstr(expr)} = 0 for x. Give the solutions in increasing order, comma-separated.",
        )
        result = f"{r1}, {r2}"
        diff = "easy"
    else:
        a, b = c[0], c[1]
        expr = sp.expand((X + a) * (X - b)) / (X + a)
        op, prompt = "simplify", f"Simplify ({sp.sstr(sp.expand((X + a) * (X - b)))})/(x + {a})."
        result = sp.simplify(expr)
        diff = "easy"
    truth = result if isinstance(result, str) else sp.sstr(result)
    answer_type = "normalized" if op == "solve" else "sympy"
    expression = sp.sstr(expr)
    return task(
        "symbolic",
        n,
        diff,
        prompt,
        "symbolic_math",
        truth,
        answer_type,
        "symbolic manipulation with a canonical answer: a computer algebra system",
        (call("symbolic_math", operation=op, expression=expression, variable="x"), f"FINAL: {truth}"),
        check={"kind": "sympy", "operation": op, "expression": expression},
    )


# -- ambiguous: more than one tool is a fair choice ----------------------------------------------------------
def ambiguous(rng, n):
    if n % 2 == 0:
        k, p = rng.randint(100, 900), rng.choice([3, 4, 5])
        prompt = f"What is the exact value of the sum of k^{p} for k = 1 to {k}?"
        code = f"print(sum(k ** {p} for k in range(1, {k} + 1)))"
        truth = run_code(code)
        return task(
            "ambiguous",
            n,
            "intermediate",
            prompt,
            "code_executor",
            truth,
            "exact",
            "a loop or a closed-form sum both work",
            (call("code_executor", code=code), f"FINAL: {truth}"),
            alternatives=("symbolic_math",),
            check={"kind": "code", "code": code},
        )
    a, b, deg = rng.randint(0, 3), rng.randint(4, 9), rng.randint(3, 6)
    expr = X**deg + rng.randint(1, 9) * X
    truth = sp.sstr(sp.integrate(expr, (X, a, b)))
    prompt = f"What is the exact value of the definite integral of {sp.sstr(expr)} from x = {a} to x = {b}?"
    expression = f"integrate({sp.sstr(expr)}, (x, {a}, {b}))"
    return task(
        "ambiguous",
        n,
        "easy",
        prompt,
        "symbolic_math",
        truth,
        "sympy",
        "exact rational arithmetic: sympy or a short program with fractions",
        (call("symbolic_math", operation="evaluate", expression=expression), f"FINAL: {truth}"),
        alternatives=("code_executor",),
        check={"kind": "sympy", "operation": "evaluate", "expression": expression},
    )


# -- multi-step: execute, look at the result, execute again ----------------------------------------------------
def multi_step(rng, n):
    if n % 2 == 0:
        threshold = rng.randint(10**5, 10**6)
        first = (
            "s, p, i = 0, 2, 0\n"
            "def is_prime(q):\n    return q > 1 and all(q % d for d in range(2, int(q ** 0.5) + 1))\n"
            f"while s <= {threshold}:\n    if is_prime(p):\n        s += p\n        i += 1\n    p += 1\nprint(i)"
        )
        count = run_code(first)
        second = (
            "N = 200000\nsieve = bytearray([1]) * N\nsieve[0:2] = b'\\x00\\x00'\n"
            "for i in range(2, int(N ** 0.5) + 1):\n    if sieve[i]:\n        sieve[i*i::i] = bytearray(len(sieve[i*i::i]))\n"
            f"ps = [q for q in range(N) if sieve[q]][:{count}]\nprint(sum(map(int, str(ps[-1]))))"
        )
        prompt = (
            f"Step 1: find how many of the first primes (2, 3, 5, ...) must be added up for the sum to exceed "
            f"{threshold}. Step 2: take the last prime added and give the sum of its decimal digits. "
            "Use the code executor for each step."
        )
    else:
        start = rng.randint(10**5, 10**6)
        first = f"x, top = {start}, {start}\nwhile x != 1:\n    x = x // 2 if x % 2 == 0 else 3 * x + 1\n    top = max(top, x)\nprint(top)"
        top = run_code(first)
        second = f"n = {top}\nf, d = [], 2\nwhile d * d <= n:\n    while n % d == 0:\n        f.append(d)\n        n //= d\n    d += 1\nif n > 1:\n    f.append(n)\nprint(max(f))"
        prompt = (
            f"Step 1: find the highest value reached by the Collatz sequence starting at {start}. Step 2: give the "
            "largest prime factor of that value. Use the code executor for each step."
        )
    truth = run_code(second)
    return task(
        "multi_step",
        n,
        "complex",
        prompt,
        "code_executor",
        truth,
        "exact",
        "the second computation depends on the first one's result",
        (call("code_executor", code=first), call("code_executor", code=second), f"FINAL: {truth}"),
        min_tool_calls=2,
        check={"kind": "code", "code": second},
    )


CATEGORIES = (pure_reasoning, execution, symbolic, ambiguous, multi_step)


def generate() -> list[dict]:
    rows = []
    for maker in CATEGORIES:
        rng = random.Random(f"{SEED}-{maker.__name__}")
        rows += [maker(rng, n) for n in range(PER_CATEGORY)]
    return rows


def verify(row: dict) -> None:
    """Recompute the ground truth a second way; AssertionError on any mismatch."""
    chk, truth = row["check"], row["ground_truth_output"]
    if chk["kind"] == "code":
        assert run_code(chk["code"]) == truth, row["id"]
    elif chk["kind"] in ("choice_print", "choice_value"):
        value = run_code(chk["code"]) if chk["kind"] == "choice_print" else chk["value"]
        chosen = dict(line.split(") ", 1) for line in chk["options"].splitlines())[truth]
        assert chosen == value, row["id"]
    else:
        expr = sp.sympify(chk["expression"])
        if chk["operation"] == "solve":
            got = ", ".join(str(s) for s in sorted(sp.solve(expr, X)))
            assert got == truth, row["id"]
        elif chk["operation"] == "evaluate" or chk["operation"] == "simplify":
            assert sp.simplify(expr - sp.sympify(truth)) == 0, row["id"]
        elif chk["operation"] == "diff":
            assert sp.simplify(sp.diff(expr, X) - sp.sympify(truth)) == 0, row["id"]
        else:  # an antiderivative: its derivative is the integrand
            assert sp.simplify(sp.diff(sp.sympify(truth), X) - expr) == 0, row["id"]


def render(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify and compare with the file instead of writing")
    opts = parser.parse_args()
    rows = generate()
    for row in rows:
        verify(row)
    data = render(rows)
    if opts.check:
        same = OUT.read_bytes() == data
        print(f"{len(rows)} tasks verified; {OUT.name} {'matches' if same else 'DIFFERS from'} the generator")
        return 0 if same else 1
    OUT.write_bytes(data)
    print(f"wrote {OUT} ({len(rows)} tasks, sha256 {hashlib.sha256(data).hexdigest()[:16]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
