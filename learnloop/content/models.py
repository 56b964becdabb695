"""The domain of a content pack: skills, roles, items and lessons.

A pack is authored as YAML and Markdown (see ``loader.py``); these pydantic models are
its validated, in-memory form. They are plain data: no database, no I/O.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_serializer,
    field_validator,
    model_validator,
)

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
Agent = Annotated[str, Field(min_length=3, max_length=120)]


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

    @field_validator("answer")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("answer must be a finite number")
        return v

    @model_validator(mode="after")
    def _key_matches_kind(self) -> Item:
        problems = self.key_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

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
