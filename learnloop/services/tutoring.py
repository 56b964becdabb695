"""The tutor as a use case: ask about an item or lesson, keep the conversation, list and delete it.

Hints the tutor gives about the item being practised count as hints used, exactly as if
the learner had pressed "Show a hint".

What stays secret is decided per *presentation*: an item shown to the learner (in practice,
new or review, or as the current question of a skill check) is protected until that
presentation is answered, however often the same item was answered before. Tutor replies
written before the presentation began are hidden while it is open, and the tutor refuses to
talk at all while a skill check is in progress.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from learnloop import readiness
from learnloop.content.models import Item, Lesson
from learnloop.errors import Forbidden, InvalidInput, LearnloopError, NotFound
from learnloop.i18n import _
from learnloop.llm import tutor
from learnloop.llm.leaks import redact
from learnloop.llm.providers.offline import LessonIndex, lesson_index
from learnloop.services.auth import CurrentUser
from learnloop.services.context import ActivePack, AppContext
from learnloop.services.llm_usage import gateway_for
from learnloop.services.mastery import load_model, mastery_of
from learnloop.store.models import (
    Assessment,
    Organisation,
    PendingItem,
    Response,
    TutorConversation,
    TutorMessage,
    UtcDateTime,
    as_utc,
    utcnow,
)

MAX_QUESTION_CHARS = 2000


class CitationView(BaseModel):
    n: int
    lesson_id: str
    title: str


class MessageView(BaseModel):
    id: int
    role: str
    content: str
    citations: list[CitationView]
    provider: str
    notices: list[str]
    created_at: UtcDateTime


class ConversationView(BaseModel):
    id: int
    item_id: str | None
    lesson_id: str | None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    messages: list[MessageView]


class ConversationSummary(BaseModel):
    id: int
    item_id: str | None
    lesson_id: str | None
    first_question: str
    messages: int
    updated_at: UtcDateTime


def _message_view(m: TutorMessage, content: str | None = None) -> MessageView:
    return MessageView(
        id=m.id,
        role=m.role,
        content=m.content if content is None else content,
        provider=m.provider,
        citations=[CitationView(**c) for c in m.citations or []],
        notices=list(m.notices or []),
        created_at=m.created_at,
    )


#: item id -> when its open presentation began (None: the current question of a skill check)
OpenItems = dict[str, datetime | None]


def _open_items(session: Session, active: ActivePack, user_id: int) -> OpenItems:
    """The items the learner is answering right now, in practice and in skill checks."""
    out: OpenItems = {}
    for current in session.execute(
        select(Assessment.current_item).where(
            Assessment.user_id == user_id, Assessment.status == "in_progress"
        )
    ).scalars():
        if current and current in active.items:
            out[current] = None
    pending = session.get(PendingItem, user_id)
    if pending is not None and pending.item_id in active.items and pending.item_id not in out:
        out[pending.item_id] = as_utc(pending.presented_at)
    return out


def _before(moment: datetime, start: datetime | None) -> bool:
    """Was ``moment`` before the presentation that began at ``start`` (always, in a check)?"""
    return start is None or as_utc(moment) < start


def _check_in_progress(session: Session, user_id: int) -> bool:
    return (
        session.execute(
            select(Assessment.id)
            .where(Assessment.user_id == user_id, Assessment.status == "in_progress")
            .limit(1)
        ).first()
        is not None
    )


def _hidden_notice() -> str:
    return _("[hidden until you have answered the question you are working on]")


def _shown_content(
    active: ActivePack, conv: TutorConversation, m: TutorMessage, open_items: OpenItems
) -> str | None:
    """What of a stored tutor reply may be shown now (None: all of it).

    Replies written before an open presentation began were written when its item was not
    protected (e.g. after an earlier answer): the whole reply is hidden when the conversation
    is about that item, and sentences giving its answer away are withheld otherwise."""
    if m.role != "tutor" or not open_items:
        return None
    if conv.item_id in open_items and _before(m.created_at, open_items[conv.item_id]):
        return _hidden_notice()
    items = [active.items[i] for i, start in open_items.items() if _before(m.created_at, start)]
    if not items:
        return None
    text, count = redact(m.content, items, _("[withheld until you have answered]"))
    return text if count else None


def _conversation_view(
    session: Session, active: ActivePack, user_id: int, conv: TutorConversation
) -> ConversationView:
    messages = (
        session.execute(
            select(TutorMessage).where(TutorMessage.conversation_id == conv.id).order_by(TutorMessage.id)
        )
        .scalars()
        .all()
    )
    open_items = _open_items(session, active, user_id)
    return ConversationView(
        id=conv.id,
        item_id=conv.item_id,
        lesson_id=conv.lesson_id,
        created_at=conv.created_at,
        updated_at=conv.updated_at,
        messages=[_message_view(m, _shown_content(active, conv, m, open_items)) for m in messages],
    )


def _own_conversation(session: Session, user: CurrentUser, conversation_id: int) -> TutorConversation:
    conv = session.get(TutorConversation, conversation_id)
    if conv is None or conv.user_id != user.id:
        raise NotFound(_("No such conversation."))
    return conv


def _answered_before(session: Session, user_id: int, item_id: str) -> bool:
    return (
        session.execute(
            select(Response.id).where(Response.user_id == user_id, Response.item_id == item_id).limit(1)
        ).first()
        is not None
    )


def refusal(ctx: AppContext, user: CurrentUser) -> str | None:
    """Why the tutor will not talk to this learner now (a skill check in progress), or None."""
    with ctx.session() as session:
        return _check_refusal() if _check_in_progress(session, user.id) else None


def _check_refusal() -> str:
    return _("The tutor is not available during a skill check. Finish the check first.")


def _lesson(active: ActivePack, lesson_id: str) -> Lesson:
    for lesson in active.pack.lessons:
        if lesson.id == lesson_id:
            return lesson
    raise NotFound(_("No such lesson."))


def _situation(
    session: Session,
    active: ActivePack,
    user: CurrentUser,
    question: str,
    item: Item | None,
    lesson: Lesson | None,
    history: list[tuple[str, str]],
) -> tutor.TutorSituation:
    open_items = _open_items(session, active, user.id)
    # Finished means answered in the presentation that was open: an item shown again (a review)
    # is protected again until it is answered again.
    finished = item is not None and item.id not in open_items and _answered_before(session, user.id, item.id)
    pending = session.get(PendingItem, user.id)
    hints_shown = 0
    if item is not None and pending is not None and pending.item_id == item.id:
        hints_shown = pending.hints_shown
    protected: list[Item] = []
    if item is not None and not finished:
        protected.append(item)
    # Whatever else the learner is answering now must not be given away either.
    protected += [active.items[i] for i in open_items if item is None or i != item.id]
    model = load_model(session, user.org_id)
    rows = mastery_of(session, user.id)
    skills = list(item.skills) if item is not None else list(lesson.skills) if lesson is not None else []
    skill_index = active.pack.skill_index()
    mastery = {
        s: (skill_index[s].name if s in skill_index else s, rows[s].p_known if s in rows else model.prior(s))
        for s in skills
    }
    return tutor.TutorSituation(
        question=question,
        item=item,
        item_finished=finished,
        hints_shown=hints_shown,
        lesson=lesson,
        mastery=mastery,
        history=history,
        protected=protected,
    )


def _index(ctx: AppContext, active: ActivePack) -> LessonIndex:
    embedder = gateway_for(ctx).embedder()
    if embedder is None:
        return lesson_index(active.row_id, active.pack, None, "bm25")
    embed, name = embedder
    return lesson_index(active.row_id, active.pack, embed, name)


def warm_up(ctx: AppContext) -> None:
    """Load what the first tutor reply needs: the embedding model, the lesson vectors of the
    active pack, the mastery model. Run at start (``start_warm_up``), not on a learner's time."""
    with ctx.session() as session:
        try:
            active = ctx.active_pack(session)
        except LearnloopError:
            return  # no pack loaded yet: nothing to index
        for org_id in session.execute(select(Organisation.id)).scalars():
            load_model(session, org_id)
    index = _index(ctx, active)
    if index.warm():
        index.search("warm up", "")  # the query path (tokenizer, first forward pass) too


def start_warm_up(ctx: AppContext) -> None:
    """:func:`warm_up` in the background; /healthz reports "starting" until it is done."""
    if ctx.settings.llm_warm_up:
        readiness.warm_up_in_background("tutor", lambda: warm_up(ctx))


def prepare(
    ctx: AppContext,
    user: CurrentUser,
    question: str,
    item_id: str | None,
    lesson_id: str | None,
    conversation_id: int | None,
    in_assessment: bool = False,
) -> tuple[tutor.TutorSituation, LessonIndex, int | None, str | None, str | None]:
    """Check a question and build what the tutor answers in: the situation (with the items it
    must not give away), the lesson index, and the conversation it continues (None: a new one)."""
    if in_assessment:
        raise Forbidden(_check_refusal())
    question = (question or "").strip()
    if not question:
        raise InvalidInput(_("Ask a question first."))
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInput(
            _("Questions to the tutor can be at most %(n)d characters.") % {"n": MAX_QUESTION_CHARS}
        )
    if "\x00" in question:
        raise InvalidInput(_("The question contains binary data."))
    with ctx.session() as session:
        # Enforced here, whatever the page or client says: no tutor while a check is running.
        if _check_in_progress(session, user.id):
            raise Forbidden(_check_refusal())
        active = ctx.active_pack(session, user.org_id)
        history: list[tuple[str, str]] = []
        if conversation_id is not None:
            conv = _own_conversation(session, user, conversation_id)
            item_id, lesson_id = conv.item_id, conv.lesson_id
            open_items = _open_items(session, active, user.id)
            if conv.item_id in open_items and _before(conv.created_at, open_items[conv.item_id]):
                # The item is being answered again: a new presentation gets a new conversation,
                # without the replies written when it was not protected.
                conversation_id = None
        if conversation_id is not None:
            history = [
                (m.role, m.content)
                for m in session.execute(
                    select(TutorMessage)
                    .where(TutorMessage.conversation_id == conv.id)
                    .order_by(TutorMessage.id)
                ).scalars()
            ]
        item = active.item(item_id) if item_id else None
        lesson = _lesson(active, lesson_id) if lesson_id else None
        situation = _situation(session, active, user, question, item, lesson, history)
    return situation, _index(ctx, active), conversation_id, item_id, lesson_id


def _save(
    ctx: AppContext,
    user: CurrentUser,
    situation: tutor.TutorSituation,
    answer: tutor.TutorReply,
    conversation_id: int | None,
    item_id: str | None,
    lesson_id: str | None,
) -> ConversationView:
    with ctx.session() as session:
        now = utcnow()
        if conversation_id is None:
            conv = TutorConversation(
                org_id=user.org_id,
                user_id=user.id,
                item_id=item_id,
                lesson_id=lesson_id,
                created_at=now,
                updated_at=now,
            )
            session.add(conv)
            session.flush()
        else:
            conv = _own_conversation(session, user, conversation_id)
            conv.updated_at = now
        session.add(
            TutorMessage(
                conversation_id=conv.id,
                role="learner",
                content=situation.question,
                citations=[],
                provider="",
                notices=[],
                created_at=now,
            )
        )
        session.add(
            TutorMessage(
                conversation_id=conv.id,
                role="tutor",
                content=answer.text,
                citations=[{"n": c.n, "lesson_id": c.lesson_id, "title": c.title} for c in answer.citations],
                provider=answer.provider,
                notices=answer.notices,
                created_at=now,
            )
        )
        pending = session.get(PendingItem, user.id)
        if (
            answer.hint_level is not None
            and situation.item is not None
            and pending is not None
            and pending.item_id == situation.item.id
            and answer.hint_level > pending.hints_shown
        ):
            pending.hints_shown = answer.hint_level
        session.flush()
        return _conversation_view(session, ctx.active_pack(session, user.org_id), user.id, conv)


def ask(
    ctx: AppContext,
    user: CurrentUser,
    question: str,
    *,
    item_id: str | None = None,
    lesson_id: str | None = None,
    conversation_id: int | None = None,
    in_assessment: bool = False,
) -> ConversationView:
    """Ask the tutor; returns the whole conversation with the new question and reply."""
    situation, index, conversation_id, item_id, lesson_id = prepare(
        ctx, user, question, item_id, lesson_id, conversation_id, in_assessment
    )
    answer = tutor.reply(gateway_for(ctx), index, situation, org_id=user.org_id, user_id=user.id)
    return _save(ctx, user, situation, answer, conversation_id, item_id, lesson_id)


def ask_stream(
    ctx: AppContext,
    user: CurrentUser,
    question: str,
    *,
    item_id: str | None = None,
    lesson_id: str | None = None,
    conversation_id: int | None = None,
    in_assessment: bool = False,
) -> Iterator[str | ConversationView]:
    """Like :func:`ask`, streaming checked pieces of the reply before the saved conversation."""
    situation, index, conversation_id, item_id, lesson_id = prepare(
        ctx, user, question, item_id, lesson_id, conversation_id, in_assessment
    )

    def events() -> Iterator[str | ConversationView]:
        for event in tutor.stream_reply(
            gateway_for(ctx), index, situation, org_id=user.org_id, user_id=user.id
        ):
            if isinstance(event, tutor.TutorReply):
                yield _save(ctx, user, situation, event, conversation_id, item_id, lesson_id)
            else:
                yield event

    return events()


def conversations(ctx: AppContext, user: CurrentUser) -> list[ConversationSummary]:
    with ctx.session() as session:
        convs = (
            session.execute(
                select(TutorConversation)
                .where(TutorConversation.user_id == user.id)
                .order_by(TutorConversation.updated_at.desc(), TutorConversation.id.desc())
            )
            .scalars()
            .all()
        )
        out = []
        for conv in convs:
            messages = session.execute(
                select(TutorMessage.role, TutorMessage.content)
                .where(TutorMessage.conversation_id == conv.id)
                .order_by(TutorMessage.id)
            ).all()
            first = next((content for role, content in messages if role == "learner"), "")
            out.append(
                ConversationSummary(
                    id=conv.id,
                    item_id=conv.item_id,
                    lesson_id=conv.lesson_id,
                    first_question=first[:200],
                    messages=len(messages),
                    updated_at=conv.updated_at,
                )
            )
        return out


def conversation(ctx: AppContext, user: CurrentUser, conversation_id: int) -> ConversationView:
    with ctx.session() as session:
        conv = _own_conversation(session, user, conversation_id)
        return _conversation_view(session, ctx.active_pack(session, user.org_id), user.id, conv)


def latest_conversation(
    ctx: AppContext, user: CurrentUser, *, item_id: str | None = None, lesson_id: str | None = None
) -> ConversationView | None:
    """The learner's newest conversation about this item or lesson (for the chat panel); about
    an item being answered now, only one begun in this presentation."""
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id)
        conv = (
            session.execute(
                select(TutorConversation)
                .where(
                    TutorConversation.user_id == user.id,
                    TutorConversation.item_id == item_id,
                    TutorConversation.lesson_id == lesson_id,
                )
                .order_by(TutorConversation.id.desc())
            )
            .scalars()
            .first()
            if (item_id or lesson_id)
            else None
        )
        if conv is None:
            return None
        open_items = _open_items(session, active, user.id)
        if conv.item_id in open_items and _before(conv.created_at, open_items[conv.item_id]):
            return None
        return _conversation_view(session, active, user.id, conv)


def delete_conversation(ctx: AppContext, user: CurrentUser, conversation_id: int) -> None:
    with ctx.session() as session:
        conv = _own_conversation(session, user, conversation_id)
        session.execute(delete(TutorMessage).where(TutorMessage.conversation_id == conv.id))
        session.delete(conv)


def delete_all_conversations(ctx: AppContext, user: CurrentUser) -> int:
    with ctx.session() as session:
        ids = list(
            session.execute(
                select(TutorConversation.id).where(TutorConversation.user_id == user.id)
            ).scalars()
        )
        if ids:
            session.execute(delete(TutorMessage).where(TutorMessage.conversation_id.in_(ids)))
            session.execute(delete(TutorConversation).where(TutorConversation.id.in_(ids)))
        return len(ids)


def as_dict(view: ConversationView) -> dict[str, Any]:
    return view.model_dump(mode="json")
