"""Item families: seeded instances, a restricted evaluator, and refusal of bad generators."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from learnloop.content.families import FamilyError, evaluate, render, seed_for
from learnloop.content.loader import PackError, load_pack, write_pack
from learnloop.content.models import Item
from learnloop.content.scoring import score_answer
from tests.conftest import DEFAULT_PACK, MINI_PACK

F1: dict[str, Any] = {
    "id": "basics.tokens.f1-family",
    "skills": ["basics.tokens"],
    "kind": "numeric",
    "stem": "TP = {tp}, FP = {fp}, FN = {fn}. What is F1 (3 decimals)?",
    "tolerance": 0.0005,
    "explanation": "F1 = 2·{tp} / (2·{tp} + {fp} + {fn}) = {answer:.3f}.",
    "hints": ["F1 is the harmonic mean of precision and recall.", "2·TP / (2·TP + FP + FN), here {tp}."],
    "family": {
        "params": {"tp": {"int": [20, 90]}, "fp": {"int": [1, 30]}, "fn": {"int": [1, 30]}},
        "answer": "round(2 * tp / (2 * tp + fp + fn), 3)",
        "examples": [{"tp": 40, "fp": 12, "fn": 8, "answer": 0.8}],
    },
}


def test_evaluator_computes_and_refuses_python() -> None:
    assert evaluate("round(2 * tp / (2 * tp + fp), 2)", {"tp": 3, "fp": 2}) == 0.75
    assert evaluate("x if x > 0 else -x", {"x": -4}) == 4
    assert evaluate("max([a, b, 7]) ** 2", {"a": 1, "b": 2}) == 49
    for hostile in (
        "__import__('os').system('id')",
        "(1).__class__",
        "open('/etc/passwd')",
        "[x for x in range(3)]",
        "lambda: 1",
        "tp.real",
        "9 ** 9 ** 9",
        "'a' * 10 ** 9",
    ):
        with pytest.raises(FamilyError):
            evaluate(hostile, {"tp": 1})


def test_templates_render_numbers_and_refuse_unknown_names() -> None:
    assert (
        render("{n} items, {p:.1%}, {{literal}}", {"n": 12000, "p": 0.25}) == "12,000 items, 25.0%, {literal}"
    )
    with pytest.raises(FamilyError, match="does not define"):
        render("{missing}", {})
    with pytest.raises(FamilyError, match="not a number format"):
        render("{n:!r}", {"n": 1})
    with pytest.raises(FamilyError, match="lone"):
        render("a { b", {})


def test_instances_are_reproducible_and_varied() -> None:
    item = Item.model_validate(F1)
    # as authored, the item shows its first worked example, so code unaware of families is safe
    assert item.answer == 0.8 and "TP = 40, FP = 12, FN = 8" in item.stem
    assert "{" not in item.explanation and "40" in item.hints[1]
    seeds = [seed_for(f"presentation-{n}") for n in range(40)]
    instances = [item.instance(s) for s in seeds]
    assert len({i.stem for i in instances}) >= 30, "instances rarely repeat a surface form"
    again = item.instance(seeds[5])
    assert again.stem == instances[5].stem and again.answer == instances[5].answer and again.seed == seeds[5]
    for inst in instances:
        tp, fp, fn = (int(x) for x in re.findall(r"= (\d+)", inst.stem))
        assert inst.answer == round(2 * tp / (2 * tp + fp + fn), 3)
        assert score_answer(inst, {"value": inst.answer}).correct
        assert not score_answer(inst, {"value": inst.answer + 0.01}).correct
    # the instance's templates survive, so an instance of an instance is the same instance
    assert instances[3].instance(seeds[3]).stem == instances[3].stem
    assert item.instance_for("abc").stem == item.instance(seed_for("abc")).stem


def test_dump_keeps_templates_and_reloads() -> None:
    item = Item.model_validate(F1)
    dumped = item.model_dump(mode="json", exclude_none=True)
    assert dumped["stem"] == F1["stem"] and "answer" not in dumped
    assert Item.model_validate(dumped).stem == item.stem


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"answer": "round(2 * tp / (2 * tp + fp + fn), 2) + 0.01"}, "out of tolerance"),
        ({"answer": "tp / (fp - fp)"}, "fails"),
        ({"answer": "tp.__class__"}, "not allowed"),
        ({"answer": "tp + nobody"}, "unknown name"),
        ({"where": "tp > 1000"}, "no instance satisfies"),
        ({"params": {"tp": {"int": [5, 1]}, "fp": {"int": [1, 3]}, "fn": {"int": [1, 3]}}}, "lo <= hi"),
    ],
)
def test_bad_family_is_refused_with_file_and_line(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    import yaml

    root = tmp_path / "pack"
    shutil.copytree(MINI_PACK, root)
    family = {**F1["family"], **change}
    (root / "items" / "family.yaml").write_text(
        "# a family item\n" + yaml.safe_dump([{**F1, "family": family}], sort_keys=False, allow_unicode=True)
    )
    with pytest.raises(PackError) as info:
        load_pack(root)
    text = "\n".join(str(p) for p in info.value.problems)
    assert re.search(r"items/family.yaml:\d+: item 'basics.tokens.f1-family'", text) and message in text, text


def test_unknown_placeholder_and_translation_placeholders(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not define"):
        Item.model_validate({**F1, "stem": "TP = {tp}, {nobody}"})
    root = tmp_path / "pack"
    shutil.copytree(MINI_PACK, root)
    import yaml

    (root / "items" / "family.yaml").write_text(yaml.safe_dump([F1], sort_keys=False, allow_unicode=True))
    overlay = root / "locales" / "zh-CN" / "items"
    overlay.mkdir(parents=True, exist_ok=True)
    (root / "locales" / "zh-CN" / "pack.yaml").write_text("name: 迷你内容包\n")
    (overlay / "family.yaml").write_text(
        "basics.tokens.f1-family:\n  stem: 真正例 {tp}、假正例 {fp}、假负例 {fn}。F1 是多少（保留 3 位小数）？\n"
    )
    pack = load_pack(root)
    zh = pack.localized("zh-CN").item("basics.tokens.f1-family")
    assert zh.stem.startswith("真正例 40、假正例 12") and zh.answer == 0.8
    inst = zh.instance(7)
    assert (
        inst.stem.startswith("真正例 ")
        and inst.answer == pack.item("basics.tokens.f1-family").instance(7).answer
    )
    (overlay / "family.yaml").write_text("basics.tokens.f1-family:\n  stem: 真正例 {tp}、假正例 {fp}。\n")
    with pytest.raises(PackError) as info:
        load_pack(root)
    assert "placeholders" in str(info.value) and "fn" in str(info.value)
    # a pack with a family writes back its templates and reads back the same
    out = write_pack(pack, tmp_path / "out")
    assert (
        load_pack(out).item("basics.tokens.f1-family").instance(3).stem
        == pack.item("basics.tokens.f1-family").instance(3).stem
    )


def _surface(item: Item) -> str:
    """What a learner sees of an instance: the stem, and for code the calls of its cases."""
    return item.stem + "".join(c.call for c in item.cases or [])


def test_default_pack_has_families() -> None:
    pack = load_pack(DEFAULT_PACK)
    families = [i for i in pack.items if i.family is not None]
    assert len(families) >= 40
    for item in families:
        assert item.family is not None
        possible = 1
        for spec in item.family.params.values():
            if "choice" in spec:
                possible *= len(spec["choice"])
            elif "int" in spec:
                possible *= spec["int"][1] - spec["int"][0] + 1
            else:
                lo, hi = spec["float"]
                possible *= int(round((hi - lo) / spec["step"])) + 1 if spec.get("step") else 1000
        stems = {_surface(item.instance(seed)) for seed in range(60)}
        assert len(stems) >= min(10, 0.6 * possible), f"{item.id}: {len(stems)} surface forms in 60 instances"


CODE: dict[str, Any] = {
    "id": "basics.prompts.scale-family",
    "skills": ["basics.prompts"],
    "kind": "code",
    "language": "python",
    "stem": "Write `scale(xs, k)` that returns a new list with every number of `xs` multiplied by `k`.",
    "explanation": "Multiply each element by k: `scale({xs}, {k})` is {scaled}.",
    "hints": ["Build a new list.", "`[x * k for x in xs]`."],
    "starter": "def scale(xs, k):\n    raise NotImplementedError\n",
    "solution": "def scale(xs, k):\n    return [x * k for x in xs]\n",
    "cases": [
        {"name": "drawn", "public": True, "call": "scale({xs}, {k})"},
        {"name": "empty", "call": "scale([], {k})", "expect": []},
    ],
    "family": {
        "params": {"k": {"int": [2, 9]}, "a": {"int": [1, 20]}, "b": {"int": [-5, 5]}},
        "let": {"xs": "[a, b, a + b]", "scaled": "[a * k, b * k, (a + b) * k]"},
        "expect": {"drawn": "[a * k, b * k, (a + b) * k]"},
        "examples": [{"k": 3, "a": 4, "b": -2, "expect": {"drawn": [12, -6, 6]}}],
    },
}


def test_code_family_draws_data_and_expected_values() -> None:
    item = Item.model_validate(CODE)
    drawn = item.cases[0]  # type: ignore[index]
    assert drawn.call == "scale([4, -2, 2], 3)" and drawn.expect == [12, -6, 6]
    assert "[12, -6, 6]" in item.explanation
    instances = [item.instance(seed) for seed in range(30)]
    assert len({i.cases[0].call for i in instances}) >= 20  # type: ignore[index]
    for inst in instances:
        case = inst.cases[0]  # type: ignore[index]
        xs, k = eval(case.call.removeprefix("scale"))  # our own template, not pack text  # noqa: S307
        assert case.expect == [x * k for x in xs]
    dumped = item.model_dump(mode="json", exclude_none=True)
    assert dumped["cases"][0]["call"] == "scale({xs}, {k})" and "expect" not in dumped["cases"][0]
    assert Item.model_validate(dumped).cases == item.cases
    bad = {
        **CODE,
        "family": {
            **CODE["family"],
            "examples": [{"k": 3, "a": 4, "b": -2, "expect": {"drawn": [12, -6, 7]}}],
        },
    }
    with pytest.raises(ValueError, match="out of tolerance of the worked value"):
        Item.model_validate(bad)


def test_code_family_solution_passes_and_starter_fails_on_instances(sandbox) -> None:  # type: ignore[no-untyped-def]
    from learnloop.sandbox.judge import Limits

    item = Item.model_validate(CODE)
    for seed in (1, 2, 3):
        inst = item.instance(seed)
        assert sandbox.run(inst.solution or "", inst.cases or [], Limits(timeout_s=10)).correct
        assert not sandbox.run(inst.starter or "", inst.cases or [], Limits(timeout_s=10)).correct
