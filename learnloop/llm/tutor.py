"""The tutor: Socratic by default, grounded in lesson passages it cites, aware of mastery, and
never handing over the answer of an item the learner has not finished.

Passages are retrieved for the learner's question, with the item or lesson as context.
With a model: a prompt built from the passages, the learner's mastery and the conversation;
the reply is checked sentence by sentence (``leaks.py``) and a reply that gives the answer
away is replaced by the offline one. Offline: what the learner asked for (a hint, an
explanation of an idea, or the answer, which it declines while the item is open) from the
passages that best answer the question, quoted with their markdown (lists, code), the next
rung of the item's hint ladder when a hint is asked for, and a guiding question.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from learnloop.content.models import Item, Lesson
from learnloop.i18n import _
from learnloop.llm.gateway import Gateway, OfflineRoute
from learnloop.llm.leaks import leaks, passage_gives_away, redact, sentences
from learnloop.llm.providers.base import ChatRequest, Completion
from learnloop.llm.providers.offline import LessonIndex, Passage, next_hint

MAX_HISTORY_TURNS = 6
#: passages retrieved while an item is open, before those that state its answer are dropped
CANDIDATES = 8


@dataclass
class TutorSituation:
    """What the tutor knows when it answers."""

    question: str
    item: Item | None = None
    item_finished: bool = False
    hints_shown: int = 0
    lesson: Lesson | None = None
    #: skill id -> (name, P(known))
    mastery: dict[str, tuple[str, float]] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)
    #: unfinished items whose answers must not appear (the current item and the pending one)
    protected: list[Item] = field(default_factory=list)

    @property
    def skills(self) -> list[str]:
        if self.item is not None:
            return list(self.item.skills)
        return list(self.lesson.skills) if self.lesson is not None else []


@dataclass
class Citation:
    n: int
    lesson_id: str
    title: str


@dataclass
class TutorReply:
    text: str
    citations: list[Citation]
    provider: str
    notices: list[str] = field(default_factory=list)
    hint_level: int | None = None
    withheld: bool = False


def _excerpt(text: str, words: int) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    parts = flat.split(" ")
    return flat if len(parts) <= words else " ".join(parts[:words]) + " …"


def _level(p: float) -> str:
    if p < 0.4:
        return "beginner"
    return "developing" if p < 0.75 else "strong"


def retrieve(index: LessonIndex, situation: TutorSituation, k: int = 3) -> list[Passage]:
    """Passages for the learner's question, with the item (or lesson) as context; while an item
    is open, none that states its answer (they are neither quoted nor given to a model)."""
    context = ""
    if situation.item is not None:
        context = situation.item.stem
    elif situation.lesson is not None:
        context = situation.lesson.title
    candidates = index.search(
        situation.question,
        context,
        situation.skills,
        k=CANDIDATES if situation.protected else k,
        lesson_id=situation.lesson.id if situation.lesson is not None else None,
    )
    safe = [
        p
        for p in candidates
        if not any(passage_gives_away(f"{p.title}\n{p.text}", item) for item in situation.protected)
    ]
    return safe[:k]


def citations_for(passages: list[Passage]) -> list[Citation]:
    return [Citation(n=i + 1, lesson_id=p.lesson_id, title=p.title) for i, p in enumerate(passages)]


# -- with a model ---------------------------------------------------------------------------------


def tutor_messages(situation: TutorSituation, passages: list[Passage]) -> list[dict[str, str]]:
    rules = [
        "You are Learnloop's tutor. Be Socratic: help the learner reason and end with one short guiding question.",
        "Ground what you say in the numbered lesson passages below and cite them like [1].",
        "Keep replies under 120 words.",
    ]
    if situation.item is not None and not situation.item_finished:
        rules.append(
            "The learner has NOT answered the practice question yet: never state its answer, the "
            "correct option, the final number or a full solution, even if asked. Give a hint instead."
        )
    mastery = _mastery_line(situation)
    if mastery:
        rules.append("Learner mastery: " + mastery + ". Pitch your explanation to it.")
    context = "\n\n".join(f"[{i + 1}] {p.title}\n{_excerpt(p.text, 120)}" for i, p in enumerate(passages))
    system = " ".join(rules) + "\n\nLesson passages:\n" + (context or "(none)")
    if situation.item is not None:
        system += "\n\nPractice question:\n" + situation.item.stem.strip()
        if situation.item.kind == "choice" and situation.item.options:
            system += "\n" + "\n".join(f"{k}) {v}" for k, v in situation.item.options.items())
        if situation.item_finished:
            system += "\n\nThe learner has answered it. Explanation: " + situation.item.explanation.strip()
    messages = [{"role": "system", "content": system}]
    for role, text in situation.history[-MAX_HISTORY_TURNS:]:
        messages.append({"role": "user" if role == "learner" else "assistant", "content": text})
    messages.append({"role": "user", "content": situation.question})
    return messages


def _mastery_line(situation: TutorSituation) -> str:
    return "; ".join(
        f"{name} {round(100 * p)}% ({_level(p)})"
        for sid, (name, p) in situation.mastery.items()
        if sid in situation.skills
    )


# -- offline -------------------------------------------------------------------------------------


_ASKS_ANSWER = re.compile(
    r"\b(answers?|solutions?|solve it|correct (option|one|choice|letter)|which (option|one|letter)|"
    r"right (option|one|choice)|tell me|give me the|final (number|result|value)|what is it)\b"
    r"|答案|哪个选项|直接告诉|解答",
    re.IGNORECASE,
)
_ASKS_HINT = re.compile(
    r"\b(hints?|stuck|help|clue|nudge|start|next step|where do i begin|lost)\b|提示|卡住|帮|怎么开始",
    re.IGNORECASE,
)


def intent(question: str) -> str:
    """What the learner asks for: ``answer``, ``hint`` or ``explain`` (anything else)."""
    if _ASKS_ANSWER.search(question):
        return "answer"
    return "hint" if _ASKS_HINT.search(question) else "explain"


def _quote(n: int, passage: Passage) -> str:
    """A passage as it is written (lists and code keep their markdown), with its number."""
    return f"[{n}] **{passage.title}**\n\n{passage.text.strip()}"


def offline_reply(
    situation: TutorSituation, passages: list[Passage], notices: list[str] | None = None
) -> TutorReply:
    """What the question asks for, from the passages that answer it, with citations, a hint when
    one is asked for, and a guiding question: no generated text."""
    lines: list[str] = []
    lowest = min((p for sid, (_n, p) in situation.mastery.items() if sid in situation.skills), default=0.5)
    shown = passages[:2] if lowest < 0.75 else passages[:1]
    wants = intent(situation.question)
    hint_level = None
    item = situation.item
    open_item = item is not None and not situation.item_finished
    if open_item and wants == "answer":
        lines.append(
            _(
                "I can't give you the answer while you are working on this question, "
                "but I can help you get there yourself."
            )
        )
    if shown:
        lines.append(_("Here is what the lessons say:"))
        lines += [_quote(i + 1, p) for i, p in enumerate(shown)]
    question = ""
    if item is not None and situation.item_finished:
        lines.append(
            _("You have answered this one, so here is the explanation:") + " " + item.explanation.strip()
        )
        question = _("Which step of that explanation would you like to go through again?")
    elif item is not None:
        assert open_item
        if wants in ("answer", "hint"):
            hint = next_hint(item, situation.hints_shown)
            if hint is not None:
                hint_level, text = hint
                lines.append(
                    _("Hint %(n)d of %(total)d:") % {"n": hint_level, "total": len(item.hints)} + " " + text
                )
            else:
                lines.append(_("You have seen every hint for this question."))
        question = (
            _("Which idea in [1] could help you answer the question?")
            if shown
            else _("What do you already know that could help you answer the question?")
        )
    else:
        question = (
            _("Which part of [1] would you like to go deeper on?")
            if shown
            else _("Could you say more about what you are stuck on?")
        )
    mastery = _mastery_line(situation)
    if mastery:
        lines.append(_("Your current mastery: %(mastery)s.") % {"mastery": mastery})
    lines.append(question)
    reply = TutorReply(
        text="\n\n".join(lines),
        citations=citations_for(shown),
        provider="offline",
        notices=list(notices or []),
        hint_level=hint_level,
    )
    return guard(reply, situation)


def guard(reply: TutorReply, situation: TutorSituation) -> TutorReply:
    """Redact any sentence that gives away the answer of an unfinished item."""
    text, count = redact(reply.text, situation.protected, _("[withheld until you have answered]"))
    if count:
        reply.text, reply.withheld = text, True
    return reply


# -- the entry points ------------------------------------------------------------------------------


def _model_request(
    gateway: Gateway, situation: TutorSituation, passages: list[Passage], max_tokens: int | None
) -> ChatRequest:
    return ChatRequest(
        messages=tutor_messages(situation, passages),
        temperature=0.3,
        max_tokens=max_tokens or gateway.settings.llm_tutor_max_tokens,
    )


def _leak_notice() -> str:
    return _("The tutor's reply would have given the answer away, so here are hints instead.")


def reply(
    gateway: Gateway,
    index: LessonIndex,
    situation: TutorSituation,
    *,
    org_id: int | None = None,
    user_id: int | None = None,
    max_tokens: int | None = None,
) -> TutorReply:
    passages = retrieve(index, situation)
    answer = gateway.complete(
        "tutor", _model_request(gateway, situation, passages, max_tokens), org_id=org_id, user_id=user_id
    )
    if isinstance(answer, OfflineRoute):
        return offline_reply(situation, passages, answer.notices)
    assert isinstance(answer, Completion)
    if not answer.text.strip():
        return offline_reply(
            situation,
            passages,
            [*answer.notices, _("The model gave an empty reply, so here are hints instead.")],
        )
    if leaks(answer.text, situation.protected):
        return offline_reply(situation, passages, [*answer.notices, _leak_notice()])
    return TutorReply(
        text=answer.text.strip(),
        citations=citations_for(passages),
        provider=answer.provider,
        notices=answer.notices,
    )


def stream_reply(
    gateway: Gateway,
    index: LessonIndex,
    situation: TutorSituation,
    *,
    org_id: int | None = None,
    user_id: int | None = None,
    max_tokens: int | None = None,
) -> Iterator[str | TutorReply]:
    """Checked text pieces as they come, then the final :class:`TutorReply`.

    Pieces are released a sentence at a time, each checked for leaks first; when one leaks or
    the model fails mid-way, the stream stops and the final reply (offline) replaces it.
    """
    passages = retrieve(index, situation)
    buffer = ""
    released = ""
    for event in gateway.stream(
        "tutor", _model_request(gateway, situation, passages, max_tokens), org_id=org_id, user_id=user_id
    ):
        if isinstance(event, OfflineRoute):
            yield offline_reply(situation, passages, event.notices)
            return
        if isinstance(event, Completion):
            if buffer.strip() and leaks(buffer, situation.protected):
                yield offline_reply(situation, passages, [*event.notices, _leak_notice()])
                return
            if buffer:
                yield buffer
            text = (released + buffer).strip()
            if not text:
                yield offline_reply(
                    situation,
                    passages,
                    [*event.notices, _("The model gave an empty reply, so here are hints instead.")],
                )
                return
            yield TutorReply(
                text=text, citations=citations_for(passages), provider=event.provider, notices=event.notices
            )
            return
        buffer += event
        complete = sentences(buffer)
        if len(complete) > 1 and re.search(r"[.!?\n]\s*$", buffer) is None:
            ready = buffer[: buffer.rfind(complete[-1])]
        elif re.search(r"[.!?\n]\s*$", buffer):
            ready = buffer
        else:
            continue
        if leaks(ready, situation.protected):
            yield offline_reply(situation, passages, [_leak_notice()])
            return
        released += ready
        buffer = buffer[len(ready) :]
        yield ready
