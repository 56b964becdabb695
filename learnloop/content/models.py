"""The domain of a content pack: skills, roles, items and lessons.

A pack is authored as YAML and Markdown (see ``loader.py``); these pydantic models are
its validated, in-memory form. They are plain data: no database, no I/O.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from learnloop.content import families as fam

ID_PATTERN = r"^[a-z0-9][a-z0-9_.\-]*$"
Identifier = Annotated[str, Field(pattern=ID_PATTERN, min_length=2, max_length=80)]

#: Role target levels and the mastery probability each one asks for.
LEVEL_MASTERY: dict[int, float] = {1: 0.6, 2: 0.8, 3: 0.95}

ItemKind = Literal["choice", "numeric", "text", "code"]

#: A content language tag (BCP 47 style, as in ``locales/zh-CN/``).
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
LanguageTag = Annotated[str, Field(pattern=LANGUAGE_PATTERN)]
OptionalText = Annotated[str | None, Field(default=None, min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


#: A source or a further-reading entry: a lesson id of the pack, a link, or a full reference.
_LESSON_REF = re.compile(r"^lesson\.[a-z0-9][a-z0-9_.\-]*$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
_YEAR = re.compile(r"\b(19|20)\d\d\b")
ProvenanceStatus = Literal["draft", "reviewed", "retired"]


def _whole_name(name: str) -> str:
    """A role or team name with its parentheses closed: an unquoted name with a comma in a YAML
    ``[a, b]`` list is read as several names (``"Review (model-assisted"``, ``"reviewer B)"``)."""
    depth = 0
    for ch in name:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            break
    if depth != 0:
        raise ValueError(
            f"{name!r} has unbalanced parentheses: quote a name that contains a comma, "
            '["Review team (model-assisted, second reader)"]'
        )
    return name


Agent = Annotated[str, Field(min_length=3, max_length=120), AfterValidator(_whole_name)]


def source_problem(source: str) -> str | None:
    """Why ``source`` is not a lesson id, a link or a full reference (None when it is one)."""
    text = source.strip()
    if _LESSON_REF.match(text) or _URL.match(text):
        return None
    if text.startswith(("http:", "https:", "www.")):
        return f"source {text!r} is not a whole http(s) link"
    if len(text) < 20 or not _YEAR.search(text):
        return (
            f"source {text!r} is neither a lesson id, an http(s) link nor a full reference "
            "(authors or publisher, year, title)"
        )
    return None


def _sources_valid(sources: list[str]) -> list[str]:
    problems = [p for p in map(source_problem, sources) if p]
    if problems:
        raise ValueError("; ".join(problems))
    return sources


class Provenance(_Strict):
    """Who wrote an item or lesson, who reviewed it and when, from what, and whether it is used.

    Authors and reviewers are roles or teams, never named people (see docs/authoring.md)."""

    author: Agent
    reviewers: list[Agent] = Field(default_factory=list)
    reviewed: dt.date | None = None
    sources: list[str] = Field(min_length=1)
    status: ProvenanceStatus = "draft"
    #: what the reviews covered (free text for authors; not shown to learners)
    notes: str | None = None

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[str]) -> list[str]:
        return _sources_valid(v)

    @model_validator(mode="after")
    def _consistent(self) -> Provenance:
        if self.author.strip().casefold() in {r.strip().casefold() for r in self.reviewers}:
            raise ValueError("a reviewer must be someone other than the author")
        if len(set(self.reviewers)) != len(self.reviewers):
            raise ValueError("a reviewer is listed twice")
        if self.status == "reviewed" and (not self.reviewers or self.reviewed is None):
            raise ValueError("status 'reviewed' needs at least one reviewer and a 'reviewed' date")
        if self.reviewed is not None:
            if self.reviewed > dt.date.today() + dt.timedelta(days=1):
                raise ValueError(f"reviewed date {self.reviewed} is in the future")
            if self.reviewed.year < 2020:
                raise ValueError(f"reviewed date {self.reviewed} is before 2020")
            if not self.reviewers:
                raise ValueError("a 'reviewed' date needs the reviewers")
        return self

    def lesson_refs(self) -> list[str]:
        return [s.strip() for s in self.sources if _LESSON_REF.match(s.strip())]


class Domain(_Strict):
    id: Identifier
    name: str = Field(min_length=1)
    description: str = ""


class Skill(_Strict):
    id: Identifier
    name: str = Field(min_length=1)
    domain: Identifier
    description: str = ""
    prerequisites: list[Identifier] = Field(default_factory=list)
    #: skills that help but do not gate this one (not required by roles that target it); a
    #: prerequisite that serves only some roles belongs here (see docs/roles.md)
    recommended: list[Identifier] = Field(default_factory=list)


class Role(_Strict):
    id: Identifier
    name: str = Field(min_length=1)
    description: str = ""
    #: skill id -> required level (1 working knowledge, 2 proficient, 3 expert)
    targets: dict[Identifier, Annotated[int, Field(ge=1, le=3)]] = Field(min_length=1)

    def mastery_targets(self) -> dict[str, float]:
        return {skill: LEVEL_MASTERY[level] for skill, level in self.targets.items()}


class RubricCriterion(_Strict):
    id: Identifier
    description: str = Field(min_length=1)
    points: float = Field(default=1.0, gt=0)
    #: phrases any one of which shows the criterion is met (case-insensitive; offline grading)
    keywords: list[str] = Field(default_factory=list)


class CodeCase(_Strict):
    """One check of a code item: run ``setup``, evaluate ``call``, compare with ``expect``.

    The case's code runs in the sandbox, in a fresh copy of the submission's namespace; the
    expected value never leaves the judge (``learnloop.sandbox``). Public cases show the learner
    the call, the expected and the returned value; hidden ones count only."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$", min_length=1, max_length=80)]
    #: statements run before ``call`` (e.g. building an object, keeping the input to re-check it)
    setup: str | None = None
    #: a Python expression whose value is compared with ``expect``
    call: str = Field(min_length=1, max_length=20_000)
    #: the expected value (see docs/authoring.md for how values compare); without ``raises``
    #: and without ``expect`` the call must return None
    expect: object = None
    #: instead of a value, the name of the exception the call must raise (e.g. ``ValueError``)
    raises: Annotated[str | None, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")] = None
    #: relative and absolute tolerance for numbers
    tol: float = Field(default=1e-9, ge=0, le=1)
    public: bool = False

    @field_validator("expect", mode="before")
    @classmethod
    def _from_stored(cls, v: object) -> object:
        return _expect_from_json(v)

    @field_serializer("expect", when_used="json")
    def _to_stored(self, v: object) -> object:
        return _expect_to_json(v)

    @model_validator(mode="after")
    def _one_outcome(self) -> CodeCase:
        if self.raises is not None and self.expect is not None:
            raise ValueError(f"case {self.name!r}: give either expect or raises, not both")
        try:
            compile(self.call, f"<case {self.name}>", "eval")
            if self.setup:
                compile(self.setup, f"<case {self.name} setup>", "exec")
        except SyntaxError as exc:
            raise ValueError(f"case {self.name!r}: {exc.msg} in its Python") from None
        return self


def _expect_to_json(v: object) -> object:
    """An expected value in JSON (a stored pack): sets, tuples and non-finite floats tagged."""
    if isinstance(v, float) and not math.isfinite(v):
        return {"$float": repr(v)}
    if isinstance(v, (set, frozenset)):
        return {"$set": [_expect_to_json(x) for x in sorted(v, key=repr)]}
    if isinstance(v, (list, tuple)):
        return [_expect_to_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _expect_to_json(x) for k, x in v.items()}
    return v


def _expect_from_json(v: object) -> object:
    if isinstance(v, list):
        return [_expect_from_json(x) for x in v]
    if isinstance(v, dict):
        if set(v) == {"$float"} and v["$float"] in ("nan", "inf", "-inf"):
            return float(v["$float"])
        if set(v) == {"$set"} and isinstance(v["$set"], list):
            return {_hashable(_expect_from_json(x)) for x in v["$set"]}
        return {k: _expect_from_json(x) for k, x in v.items()}
    return v


def _hashable(v: object) -> object:
    return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


_PARAM_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,30}$")
#: the texts of a family item that are templates (``{name}`` placeholders)
FAMILY_TEXTS = ("stem", "explanation", "hints", "unit")


class Family(_Strict):
    """How a family item draws its numbers and computes its key (see ``families.py``)."""

    #: name -> one of {int: [lo, hi]}, {float: [lo, hi], step: s}, {choice: [...]}
    params: dict[str, dict[str, Any]] = Field(min_length=1, max_length=20)
    #: derived values, computed in order from the params and earlier lets
    let: dict[str, str] = Field(default_factory=dict, max_length=20)
    #: the key of an instance (numeric items)
    answer: str | None = None
    #: code items: case name -> the expected value of that case, computed from the values
    expect: dict[str, str] = Field(default_factory=dict, max_length=50)
    #: instances where this is false are drawn again
    where: str | None = None
    #: instances worked out by hand: the params and the answer; the generator must agree
    examples: list[dict[str, Any]] = Field(min_length=1, max_length=20)
    _spec: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _well_formed(self) -> Family:
        known: set[str] = set()
        for name, spec in self.params.items():
            if not _PARAM_NAME.match(name) or name == "answer":
                raise ValueError(
                    f"parameter name {name!r}: use lowercase letters, digits and _ (not 'answer')"
                )
            _check_param(name, spec)
            known.add(name)
        for name, expr in self.let.items():
            if not _PARAM_NAME.match(name) or name in known or name == "answer":
                raise ValueError(f"let {name!r}: a new lowercase name (not a parameter, not 'answer')")
            _uses_only(expr, known, f"let {name}")
            known.add(name)
        if (self.answer is None) == (not self.expect):
            raise ValueError("give answer (a numeric item's key) or expect (a code item's cases), not both")
        if self.answer is not None:
            _uses_only(self.answer, known, "answer")
        for case, expr in self.expect.items():
            _uses_only(expr, known, f"expect {case}")
        if self.where:
            _uses_only(self.where, known, "where")
        worked = "answer" if self.answer is not None else "expect"
        for n, example in enumerate(self.examples, 1):
            missing = set(self.params) - set(example)
            extra = set(example) - set(self.params) - {worked}
            if missing or extra or worked not in example:
                raise ValueError(
                    f"example {n} needs exactly the params {sorted(self.params)} and its {worked}"
                    + (f" (missing {sorted(missing)})" if missing else "")
                    + (f" (unknown {sorted(extra)})" if extra else "")
                )
        return self

    def values(self, params: dict[str, Any]) -> dict[str, Any]:
        """The params with every let and the answer computed (a FamilyError if one fails)."""
        values = dict(params)
        for name, expr in self.let.items():
            values[name] = fam.evaluate(expr, values)
        if self.answer is not None:
            values["answer"] = fam.evaluate(self.answer, values)
        return values

    def expected(self, values: dict[str, Any]) -> dict[str, Any]:
        """A code family's expected value of each templated case."""
        return {case: fam.evaluate(expr, values) for case, expr in self.expect.items()}

    def draw(self, item_id: str, seed: int) -> dict[str, Any]:
        """The values of instance ``seed`` (the same seed always gives the same instance).
        Drawn values are remembered per generator, item and seed: a pack's item is validated
        again with each translation, and practice presents the same instances again."""
        if self._spec is None:
            self._spec = self.model_dump_json()
        key = (self._spec, item_id, seed)
        values = _DRAWN.get(key)
        if values is None:
            values = self._draw_values(item_id, seed)
            if len(_DRAWN) >= _DRAWN_MAX:
                _DRAWN.clear()
            _DRAWN[key] = values
        return dict(values)

    def _draw_values(self, item_id: str, seed: int) -> dict[str, Any]:
        rng = fam.rng_for(item_id, seed)
        for _ in range(fam.MAX_REDRAWS):
            params = {name: _draw(spec, rng) for name, spec in self.params.items()}
            values = self.values(params)
            if not self.where or fam.evaluate(self.where, values):
                return values
        raise fam.FamilyError(f"no instance satisfies where: {self.where!r} in {fam.MAX_REDRAWS} draws")


#: remembered family instances (see ``Family.draw``); cleared whole when full
_DRAWN: dict[tuple[str, str, int], dict[str, Any]] = {}
_DRAWN_MAX = 200_000


def _check_param(name: str, spec: dict[str, Any]) -> None:
    kinds = [k for k in ("int", "float", "choice") if k in spec]
    extra = set(spec) - {"int", "float", "choice", "step"}
    if len(kinds) != 1 or extra or ("step" in spec and kinds != ["float"]):
        raise ValueError(
            f"parameter {name!r}: give one of int: [lo, hi], float: [lo, hi] (with step), choice: [...]"
        )
    value = spec[kinds[0]]
    if kinds[0] == "choice":
        if not isinstance(value, list) or not 1 <= len(value) <= 200:
            raise ValueError(f"parameter {name!r}: choice needs a list of 1-200 values")
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
            raise ValueError(f"parameter {name!r}: choices are numbers or strings")
        return
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int | float) for v in value)):
        raise ValueError(f"parameter {name!r}: {kinds[0]} needs [lo, hi]")
    lo, hi = value
    if kinds[0] == "int" and not (isinstance(lo, int) and isinstance(hi, int)):
        raise ValueError(f"parameter {name!r}: int bounds must be integers")
    if not lo <= hi or abs(lo) > 1e12 or abs(hi) > 1e12:
        raise ValueError(f"parameter {name!r}: needs lo <= hi (and within 10^12)")
    if kinds[0] == "float":
        step = spec.get("step")
        if step is not None and (not isinstance(step, int | float) or step <= 0 or (hi - lo) / step > 1e6):
            raise ValueError(f"parameter {name!r}: step must be positive and give at most 10^6 values")


def _draw(spec: dict[str, Any], rng: Any) -> Any:
    if "choice" in spec:
        return rng.choice(spec["choice"])
    if "int" in spec:
        lo, hi = spec["int"]
        return rng.randint(lo, hi)
    lo, hi = spec["float"]
    step = spec.get("step")
    if step:
        n = int(round((hi - lo) / step))
        return round(lo + step * rng.randint(0, n), 10)
    return round(rng.uniform(lo, hi), 6)


def _uses_only(expr: str, known: set[str], what: str) -> None:
    try:
        names = fam.expression_names(expr)
    except fam.FamilyError as exc:
        raise ValueError(f"{what}: {exc}") from None
    unknown = names - known
    if unknown:
        raise ValueError(f"{what}: unknown name(s) {sorted(unknown)} (defined: {sorted(known)})")


class IRTParams(_Strict):
    a: float = Field(default=1.0, gt=0)
    b: float = 0.0
    c: float = Field(default=0.0, ge=0, lt=1)


class Item(_Strict):
    id: Identifier
    skills: list[Identifier] = Field(min_length=1)
    kind: ItemKind
    stem: str = Field(min_length=1)
    #: authored difficulty on the logit scale (about -3 easy .. +3 hard), used until calibrated
    difficulty: float = Field(default=0.0, ge=-4, le=4)
    irt: IRTParams | None = None
    explanation: str = Field(min_length=1)
    hints: list[str] = Field(min_length=2, max_length=3)
    minutes: float = Field(default=1.0, gt=0, le=60)
    # choice
    options: dict[str, str] | None = None
    key: str | None = None
    # numeric
    answer: float | None = None
    tolerance: float | None = Field(default=None, ge=0)
    unit: str | None = None
    # text
    reference_answers: list[str] | None = None
    rubric: list[RubricCriterion] | None = None
    pass_fraction: float = Field(default=0.6, gt=0, le=1)
    # code
    language: Literal["python"] | None = None
    starter: str | None = None
    solution: str | None = None
    cases: list[CodeCase] | None = None
    #: who wrote and reviewed the item, from what (required in packs that set
    #: ``require_provenance``; optional for drafts made in the app)
    provenance: Provenance | None = None
    #: a family item: its texts are templates and each presentation draws an instance
    family: Family | None = None

    # A family item's templates (its stem, explanation, hints and unit as written); the fields
    # themselves hold the first example's instance, so any code that ignores families still
    # shows a complete, correct item.
    _templates: dict[str, Any] | None = PrivateAttr(default=None)
    _seed: int | None = PrivateAttr(default=None)

    @field_validator("answer")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("answer must be a finite number")
        return v

    @model_validator(mode="after")
    def _key_matches_kind(self) -> Item:
        if self.family is not None:
            self._set_up_family()
        problems = self.key_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _set_up_family(self) -> None:
        """Keep the templates, check the generator, and show the first example's instance."""
        family = self.family
        assert family is not None
        if self.kind not in ("numeric", "code"):
            raise ValueError("a family item is numeric or code")
        if (self.kind == "numeric") != (family.answer is not None):
            raise ValueError("a numeric family computes answer; a code family computes expect per case")
        if self._templates is None:
            if self.answer is not None:
                raise ValueError("a family item has no answer of its own: family.answer computes it")
            self._templates = {k: getattr(self, k) for k in FAMILY_TEXTS if getattr(self, k) is not None}
            if self.kind == "code":
                names = {c.name for c in self.cases or []}
                unknown = set(family.expect) - names
                if unknown:
                    raise ValueError(f"family: expect names unknown cases {sorted(unknown)}")
                self._templates["cases"] = [
                    c.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
                    for c in self.cases or []
                ]
        if self.kind == "code":
            self._set_up_code_family()
            return
        tol = self.tolerance if self.tolerance is not None else 1e-6
        try:
            for n, example in enumerate(family.examples, 1):
                params = {k: v for k, v in example.items() if k != "answer"}
                got = family.values(params)["answer"]
                written = example["answer"]
                if not isinstance(got, int | float) or not math.isfinite(got):
                    raise fam.FamilyError(f"example {n}: the answer is not a finite number ({got!r})")
                if not isinstance(written, int | float) or abs(got - written) > tol:
                    raise fam.FamilyError(
                        f"example {n}: the generator's key {got:g} is out of tolerance of the worked "
                        f"answer {written!r} (tolerance {tol:g})"
                    )
            for seed in range(fam.CHECKED_SEEDS):
                values = family.draw(self.id, seed)
                answer = values["answer"]
                if (
                    not isinstance(answer, int | float)
                    or isinstance(answer, bool)
                    or not math.isfinite(answer)
                ):
                    raise fam.FamilyError(f"instance {seed}: the answer is not a finite number ({answer!r})")
                self._render(values)
            first = family.values({k: v for k, v in family.examples[0].items() if k != "answer"})
            for key, value in self._render(first).items():
                setattr(self, key, value)
        except fam.FamilyError as exc:
            raise ValueError(f"family: {exc}") from None

    def _set_up_code_family(self) -> None:
        family = self.family
        assert family is not None
        try:
            for n, example in enumerate(family.examples, 1):
                params = {k: v for k, v in example.items() if k != "expect"}
                got = self._render(family.values(params))["cases"]
                written = example["expect"]
                if not isinstance(written, dict) or set(written) != set(family.expect):
                    raise fam.FamilyError(f"example {n}: expect needs a value for {sorted(family.expect)}")
                for case in got:
                    if case.name in written and not _same(case.expect, written[case.name], case.tol):
                        raise fam.FamilyError(
                            f"example {n}: case {case.name}: the generator's expected value {case.expect!r} "
                            f"is out of tolerance of the worked value {written[case.name]!r}"
                        )
            for seed in range(fam.CHECKED_SEEDS):
                self._render(family.draw(self.id, seed))
            first = family.values({k: v for k, v in family.examples[0].items() if k != "expect"})
            for key, value in self._render(first).items():
                setattr(self, key, value)
        except fam.FamilyError as exc:
            raise ValueError(f"family: {exc}") from None

    def _render(self, values: dict[str, Any]) -> dict[str, Any]:
        templates = dict(self._templates or {})
        out: dict[str, Any] = {}
        if "answer" in values:
            out["answer"] = float(values["answer"])
        cases = templates.pop("cases", None)
        if cases is not None and self.family is not None:
            expected = self.family.expected(values)
            rendered = []
            for raw in cases:
                case = dict(raw)
                for key in ("call", "setup"):
                    if case.get(key):
                        case[key] = fam.render(case[key], values, code=True)
                if case["name"] in expected:
                    case["expect"] = expected[case["name"]]
                try:
                    rendered.append(CodeCase.model_validate(case))
                except ValidationError as exc:
                    raise fam.FamilyError(f"case {case['name']}: {exc.errors()[0]['msg']}") from None
            out["cases"] = rendered
        for key, template in templates.items():
            if isinstance(template, list):
                out[key] = [fam.render(t, values) for t in template]
            else:
                out[key] = fam.render(template, values)
        return out

    @property
    def seed(self) -> int | None:
        """The seed of this instance of a family item (None for the item as authored)."""
        return self._seed

    def instance(self, seed: int) -> Item:
        """Instance ``seed`` of a family item (the item itself when it is not one)."""
        if self.family is None:
            return self
        values = self.family.draw(self.id, seed)
        copy = self.model_copy(update=self._render(values))
        copy._seed = seed
        return copy

    def instance_for(self, presentation_id: str | None) -> Item:
        """The instance a presentation shows (its seed comes from the presentation's id)."""
        if self.family is None or not presentation_id:
            return self
        return self.instance(fam.seed_for(presentation_id))

    def with_texts(self, texts: dict[str, Any]) -> Item:
        """A copy with these texts (templates, for a family item) in place of its own."""
        if self.family is None:
            return self.model_copy(update=texts)
        templates = {**(self._templates or {})}
        templates.update({k: v for k, v in texts.items() if k in FAMILY_TEXTS})
        copy = self.model_copy(update={k: v for k, v in texts.items() if k not in FAMILY_TEXTS})
        copy._templates = templates
        first = self.family.values({k: v for k, v in self.family.examples[0].items() if k != "answer"})
        return copy.model_copy(update=copy._render(first))

    def templates(self) -> dict[str, Any]:
        """A family item's texts as written (with placeholders); empty for other items."""
        return dict(self._templates or {})

    @model_serializer(mode="wrap")
    def _dump_templates(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if self.family is not None and self._templates and isinstance(data, dict):
            for key, template in self._templates.items():
                if key in data:
                    data[key] = template
            data.pop("answer", None)
        return data

    def key_problems(self) -> list[str]:
        """Every reason this item could not be scored (empty when it can)."""
        p: list[str] = []
        if self.kind == "choice":
            if not self.options or len(self.options) < 2:
                p.append("choice item needs at least two options")
            if self.key is None:
                p.append("choice item has no key")
            elif self.options and self.key not in self.options:
                p.append(f"key {self.key!r} is not one of the options {sorted(self.options)}")
        elif self.kind == "numeric":
            if self.answer is None:
                p.append("numeric item has no answer")
        elif self.kind == "text":
            if not self.reference_answers:
                p.append("text item has no reference_answers")
            if not self.rubric:
                p.append("text item has no rubric")
            elif not all(c.keywords for c in self.rubric):
                p.append("every rubric criterion of a text item needs keywords for offline grading")
        elif self.kind == "code":
            names = [c.name for c in self.cases or []]
            if not names:
                p.append("code item has no cases")
            elif len(set(names)) != len(names):
                p.append("code item has two cases with the same name")
            elif not any(c.public for c in self.cases or []):
                p.append("code item needs at least one public case, to explain a failure")
            if not self.solution:
                p.append("code item has no reference solution")
            if self.language is None:
                p.append("code item needs language: python")
        return p

    @property
    def retired(self) -> bool:
        return self.provenance is not None and self.provenance.status == "retired"

    @property
    def item_params(self) -> IRTParams:
        """IRT parameters: calibrated if present, else from the authored difficulty."""
        return self.irt or IRTParams(a=1.0, b=self.difficulty, c=0.0)

    def public_view(self) -> dict[str, object]:
        """What a learner may see before answering: never the key, the solution or the cases."""
        view: dict[str, object] = {
            "id": self.id,
            "kind": self.kind,
            "skills": list(self.skills),
            "stem": self.stem,
            "minutes": self.minutes,
            "hint_count": len(self.hints),
        }
        if self.kind == "choice":
            view["options"] = dict(self.options or {})
        if self.kind == "numeric" and self.unit:
            view["unit"] = self.unit
        if self.kind == "code":
            view["starter"] = self.starter or ""
            view["language"] = self.language
        return view


def _same(got: Any, written: Any, tol: float) -> bool:
    """Whether a generated expected value agrees with the worked one (numbers within ``tol``)."""
    if isinstance(got, bool) or isinstance(written, bool):
        return got is written
    if isinstance(got, int | float) and isinstance(written, int | float):
        return math.isclose(got, written, rel_tol=tol, abs_tol=tol)
    if isinstance(got, list | tuple) and isinstance(written, list | tuple):
        return len(got) == len(written) and all(_same(a, b, tol) for a, b in zip(got, written, strict=True))
    return bool(got == written)


class Lesson(_Strict):
    id: Identifier
    title: str = Field(min_length=1)
    skills: list[Identifier] = Field(min_length=1)
    minutes: float = Field(default=5.0, gt=0, le=240)
    #: sources for the learner who wants more (lesson ids, links or full references)
    further_reading: list[str] = Field(default_factory=list)
    provenance: Provenance | None = None
    body: str = Field(min_length=1)

    @field_validator("further_reading")
    @classmethod
    def _reading(cls, v: list[str]) -> list[str]:
        return _sources_valid(v)

    @field_validator("body")
    @classmethod
    def _normalise_body(cls, v: str) -> str:
        # One trailing newline, so a lesson reads back from disk exactly as written.
        return v.strip("\n") + "\n"


class PackMeta(_Strict):
    id: Identifier
    name: str
    version: str = "1.0.0"
    description: str = ""
    #: the language of the base files (the source of truth)
    language: LanguageTag = "en"
    #: languages the pack promises complete: loading it fails on any missing translation
    languages: list[LanguageTag] = Field(default_factory=list)
    license: str = "CC-BY-4.0"
    #: every item and lesson must carry ``provenance`` (and every lesson ``further_reading``)
    require_provenance: bool = False
    domains: list[Domain] = Field(min_length=1)


# --- Translations: one overlay per language, keyed by the ids of the base pack ----------------


class NameText(_Strict):
    """The translated name and description of a domain, skill or role."""

    name: OptionalText = None
    description: OptionalText = None


class PackText(NameText):
    domains: dict[Identifier, NameText] = Field(default_factory=dict)


class CriterionText(_Strict):
    description: OptionalText = None
    #: written natively in the overlay's language, not translated word by word
    keywords: list[Annotated[str, Field(min_length=1)]] | None = Field(default=None, min_length=1)


class ItemText(_Strict):
    """The translated texts of one item; only the fields its kind has (see ``TEXT_FIELDS``)."""

    stem: OptionalText = None
    explanation: OptionalText = None
    hints: list[Annotated[str, Field(min_length=1)]] | None = None
    options: dict[str, Annotated[str, Field(min_length=1)]] | None = None
    unit: OptionalText = None
    reference_answers: list[Annotated[str, Field(min_length=1)]] | None = Field(default=None, min_length=1)
    rubric: dict[Identifier, CriterionText] | None = None


#: The translatable fields of each item kind (code stays as written).
TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "choice": ("stem", "explanation", "hints", "options"),
    "numeric": ("stem", "explanation", "hints", "unit"),
    "text": ("stem", "explanation", "hints", "reference_answers", "rubric"),
    "code": ("stem", "explanation", "hints"),
}


class LessonText(_Strict):
    title: str = Field(min_length=1)
    body: str = Field(min_length=1)

    @field_validator("body")
    @classmethod
    def _normalise_body(cls, v: str) -> str:
        return v.strip("\n") + "\n"


class Translation(_Strict):
    """Everything of a pack in one other language; any text left out falls back to the base."""

    pack: PackText = Field(default_factory=PackText)
    skills: dict[Identifier, NameText] = Field(default_factory=dict)
    roles: dict[Identifier, NameText] = Field(default_factory=dict)
    items: dict[Identifier, ItemText] = Field(default_factory=dict)
    lessons: dict[Identifier, LessonText] = Field(default_factory=dict)


class Pack(BaseModel):
    """A whole, validated content pack."""

    model_config = ConfigDict(extra="forbid")

    meta: PackMeta
    skills: list[Skill]
    roles: list[Role]
    items: list[Item]
    lessons: list[Lesson]
    #: language tag -> overlay (``locales/<lang>/`` on disk)
    translations: dict[LanguageTag, Translation] = Field(default_factory=dict)

    # Localised copies, built once per language (see ``localized``); a localised copy records the
    # texts that fell back to the base language.
    _localized: dict[str, Pack] = PrivateAttr(default_factory=dict)
    _fallbacks: dict[tuple[str, str], tuple[str, ...]] = PrivateAttr(default_factory=dict)
    _language: str | None = PrivateAttr(default=None)
    _base: Pack | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _translations_match(self) -> Pack:
        from learnloop.content.translations import overlay_mismatches

        problems = [
            f"{lang}: {m.kind} {m.id!r}: {m.message}"
            for lang, overlay in self.translations.items()
            for m in overlay_mismatches(self, overlay)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def localized(self, language: str | None) -> Pack:
        """This pack with every text in ``language`` (a content tag ``zh-CN`` or a UI locale
        ``zh_CN``), falling back to the base text only where a translation is missing; each
        fallback is counted (``learnloop.content.translations.fallback_stats``). Built once per
        language and pack; the copy has no overlays of its own."""
        from learnloop.content.translations import localize

        return localize(self, language)

    @property
    def language(self) -> str:
        """The language this pack's texts are in."""
        return self._language or self.meta.language

    def fallback_fields(self, kind: str, entity_id: str) -> tuple[str, ...]:
        """In a localised copy: the fields of one entity served in the base language."""
        return self._fallbacks.get((kind, entity_id), ())

    # Lookups are rebuilt on demand; packs are immutable once loaded.
    def skill(self, skill_id: str) -> Skill:
        return self.skill_index()[skill_id]

    def item(self, item_id: str) -> Item:
        """The item (counted as served with a fallback when its translation is incomplete)."""
        item = self.item_index()[item_id]
        self.note_served("item", item_id)
        return item

    def lesson(self, lesson_id: str) -> Lesson:
        """The lesson (counted as served with a fallback when its translation is missing)."""
        for lesson in self.lessons:
            if lesson.id == lesson_id:
                self.note_served("lesson", lesson_id)
                return lesson
        raise KeyError(lesson_id)

    def note_served(self, kind: str, entity_id: str) -> None:
        """Count an item or lesson of a localised copy served with a base-language text."""
        if (kind, entity_id) in self._fallbacks:
            from learnloop.content.translations import count_served

            count_served(self, kind, entity_id)

    def role(self, role_id: str) -> Role:
        return self.role_index()[role_id]

    def skill_index(self) -> dict[str, Skill]:
        return {s.id: s for s in self.skills}

    def item_index(self) -> dict[str, Item]:
        return {i.id: i for i in self.items}

    def role_index(self) -> dict[str, Role]:
        return {r.id: r for r in self.roles}

    def items_for_skill(self, skill_id: str) -> list[Item]:
        """The items of a skill that are in use (a retired item is never presented)."""
        return [i for i in self.items if skill_id in i.skills and not i.retired]

    def lessons_for_skill(self, skill_id: str) -> list[Lesson]:
        return [lesson for lesson in self.lessons if skill_id in lesson.skills]
