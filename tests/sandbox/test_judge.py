"""The judge: verdicts, limits and what a learner is shown."""

from __future__ import annotations

import pytest

from learnloop.content.models import CodeCase
from learnloop.sandbox.judge import Limits, Sandbox
from learnloop.sandbox.values import decode, matches

CASES = [
    CodeCase(name="small", call="add(2, 3)", expect=5, public=True),
    CodeCase(name="negative", call="add(-1, 1)", expect=0),
    CodeCase(name="bad_type", call="add('a', 1)", raises="TypeError", public=True),
]
LIMITS = Limits(timeout_s=3)


def test_correct_partial_and_public_details(sandbox: Sandbox) -> None:
    ok = sandbox.run("def add(a, b):\n    return a + b\n", CASES, LIMITS)
    assert ok.correct and ok.score == 1.0 and ok.messages() == ["3 of 3 checks passed."]
    wrong = sandbox.run("def add(a, b):\n    print('adding', a, b)\n    return 5\n", CASES, LIMITS)
    assert not wrong.correct and wrong.passed == 1 and wrong.score == pytest.approx(1 / 3)
    shown = "\n".join(wrong.messages())
    assert "add('a', 1) should raise TypeError, got 5" in shown and "adding a 1" in shown
    assert "Hidden checks failed: 1." in shown and "add(-1, 1)" not in shown


def test_exact_types_and_tolerance(sandbox: Sandbox) -> None:
    cases = [
        CodeCase(name="float", call="f()", expect=0.3, public=True),
        CodeCase(name="tuple", call="g()", expect=[1, 2.0]),
        CodeCase(name="set", call="h()", expect={"a", "b"}),
        CodeCase(name="bool", call="b()", expect=True),
    ]
    source = "def f():\n    return 0.1 + 0.2\ndef g():\n    return (1, 2)\ndef h():\n    return {'b', 'a'}\ndef b():\n    return True\n"
    assert sandbox.run(source, cases, LIMITS).correct
    # 1 is not True; a list is not a set; an int subclass is not an int
    liar = "class I(int):\n    pass\ndef f():\n    return I(0)\ndef g():\n    return [1, 2]\ndef h():\n    return ['a', 'b']\ndef b():\n    return 1\n"
    verdict = sandbox.run(liar, cases, LIMITS)
    assert [c.passed for c in verdict.cases] == [False, True, False, False]


def test_numpy_and_pandas_results(sandbox: Sandbox) -> None:
    if not sandbox.availability().numpy or not sandbox.availability().pandas:
        pytest.fail("NumPy and pandas must be importable in the sandbox (python3-numpy, python3-pandas)")
    cases = [
        CodeCase(name="array", call="scale([1, 2, 3])", expect=[0.0, 0.5, 1.0], public=True),
        CodeCase(name="frame", call="frame()", expect={"a": [1, 2], "b": [3.0, 4.0]}),
    ]
    source = (
        "import numpy as np\nimport pandas as pd\n"
        "def scale(xs):\n    x = np.asarray(xs, dtype=float)\n    return (x - x.min()) / (x.max() - x.min())\n"
        "def frame():\n    return pd.DataFrame({'a': [1, 2], 'b': [3.0, 4.0]})\n"
    )
    verdict = sandbox.run(source, cases, Limits(timeout_s=10))
    assert verdict.correct, verdict.messages()


def test_load_errors_name_the_line(sandbox: Sandbox) -> None:
    verdict = sandbox.run("x = 1\ndef add(:\n", CASES, LIMITS)
    assert (
        not verdict.correct and "SyntaxError" in (verdict.error or "") and "line 2" in (verdict.error or "")
    )
    raised = sandbox.run("x = 1\nraise RuntimeError('boom')\n", CASES, LIMITS)
    assert "RuntimeError: boom (line 2)" in (raised.error or "")


def test_time_limit(sandbox: Sandbox) -> None:
    verdict = sandbox.run("def add(a, b):\n    while True:\n        pass\n", CASES, Limits(timeout_s=1.5))
    assert verdict.timed_out and not verdict.correct and "Time limit" in (verdict.error or "")


def test_values_rules() -> None:
    assert matches([1, 2], decode({"$tuple": [1, 2]}), 1e-9)
    assert matches(float("nan"), decode({"$float": "nan"}), 1e-9)
    assert not matches(1, True, 1e-9) and not matches(True, 1, 1e-9)
    assert matches({"k": [1.0]}, decode({"$dict": [["k", [1.0000000001]]]}), 1e-6)
    assert not matches({"k": 1}, decode({"$dict": [["k", 1], ["extra", 2]]}), 1e-9)
    assert not matches(5, decode({"$other": "submission.Anything"}), 1e-9)
