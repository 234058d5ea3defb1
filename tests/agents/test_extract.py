"""Code extraction on replies shaped like real small-model output (several taken from SmolLM2-135M runs)."""

import pytest

from pytest_agentbench.extract import extract_code

SMOL_FENCED = (
    "```python\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    "    return any(num - threshold <= 0 for num in numbers)\n```\n\nThis function uses a generator "
    "expression to filter out numbers that are less than or equal to the specified threshold."
)

SMOL_TWO_BLOCKS = (
    "```python\ndef has_close_elements(numbers, threshold):\n    return sum(numbers) < threshold\n```\n\n"
    "Example usage:\n```python\nprint(has_close_elements([1.0, 2.0, 3.0], 0.5))\n# Output: False\n```"
)


@pytest.mark.parametrize(
    "reply, expected",
    [
        (
            SMOL_FENCED,
            "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
            "    return any(num - threshold <= 0 for num in numbers)\n",
        ),
        # the block holding the entry point wins over a usage example
        (SMOL_TWO_BLOCKS, "def has_close_elements(numbers, threshold):\n    return sum(numbers) < threshold\n"),
        # a fence cut off by max_new_tokens: keep what parses
        (
            "Here you go:\n```python\ndef has_close_elements(n, t):\n    return False\n\ndef helper(x):\n    return (x +",
            "def has_close_elements(n, t):\n    return False\n",
        ),
        # a bare function with prose before and after, no fence
        (
            "Sure! Here is the function:\n\ndef has_close_elements(n, t):\n    return True\n\nThis returns True always.",
            "def has_close_elements(n, t):\n    return True\n",
        ),
        # imports kept with the function
        (
            "from typing import List\nimport math\n\ndef has_close_elements(n: List[float], t):\n    return math.inf > 0\n",
            "from typing import List\nimport math\n\ndef has_close_elements(n: List[float], t):\n    return math.inf > 0\n",
        ),
        # a ```py fence and CRLF line ends
        (
            "```py\r\ndef has_close_elements(a, b):\r\n    return 1\r\n```",
            "def has_close_elements(a, b):\n    return 1\n",
        ),
    ],
)
def test_extracts_the_function(reply, expected):
    assert extract_code(reply, "has_close_elements") == expected


def test_reply_that_repeats_the_prompt_keeps_the_implementation():
    prompt_echo = (
        "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        '    """ Check if in given list of numbers, are any two numbers closer to each other than\n'
        '    given threshold.\n    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n    False\n    """\n'
        "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"
    )
    code = extract_code("```python\n" + prompt_echo + "```\nThe function compares every pair.", "has_close_elements")
    assert code == prompt_echo


def test_an_indented_body_continues_the_prompt():
    body = "    return [x for x in strings if substring in x]\n"
    assert extract_code(body, "filter_by_substring") == body


@pytest.mark.parametrize(
    "reply", ["", "I am sorry, I cannot help with that.", "The answer is 42.", "```\n\n```", '```json\n{"a": 1}\n```']
)
def test_no_code_is_none(reply):
    assert extract_code(reply, "f") is None


def test_without_entry_point_the_longest_code_wins():
    reply = "import os\n\nThen:\n\ndef a():\n    x = 1\n    return x\n"
    assert extract_code(reply) == "def a():\n    x = 1\n    return x\n"


# -- where a chat reply may stop (Request.end_after): the backends stop generating there -----------------------------
def test_code_block_end_is_the_close_of_the_block_extract_code_reads():
    from pytest_agentbench.extract import code_block_end

    end = code_block_end(SMOL_FENCED, "has_close_elements")
    assert SMOL_FENCED[:end].endswith("numbers)\n```") and SMOL_FENCED[end:].startswith("\n\nThis function")
    assert code_block_end(SMOL_TWO_BLOCKS, "has_close_elements") == SMOL_TWO_BLOCKS.index("```\n\nExample") + 3
    usage_first = "```python\nprint(f(1))\n```\n\n```python\ndef f(x):\n    return x\n```\nmore"
    assert code_block_end(usage_first, "f") == len(usage_first) - len("\nmore")  # the block defining f
    assert code_block_end(usage_first) == len("```python\nprint(f(1))\n```")  # no entry point: the first
    for open_ended in (
        "```python\ndef f(x):\n    return x\n``",
        "```text\ndef f(x): pass\n```",
        "```python\n\n```",
        "```python\ndef f(x:\n```",
        "def f(x):\n    return x\n",
    ):
        assert code_block_end(open_ended, "f") is None, open_ended


def test_a_reply_cut_where_it_may_stop_gives_the_same_code_and_the_cut_never_moves():
    from pytest_agentbench.extract import code_block_end

    for reply in (
        SMOL_FENCED,
        SMOL_TWO_BLOCKS,
        "Sure:\n```py\r\ndef has_close_elements(a, b):\r\n    return 1\r\n```\r\nok",
    ):
        end = code_block_end(reply, "has_close_elements")
        assert extract_code(reply[:end], "has_close_elements") == extract_code(reply, "has_close_elements")
        seen = [code_block_end(reply[:n], "has_close_elements") for n in range(len(reply) + 1)]
        assert seen[:end] == [None] * end and set(seen[end:]) == {end}  # as a stream grows token by token
