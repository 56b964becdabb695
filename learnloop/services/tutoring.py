"""The tutor as a use case: ask about an item or lesson, keep the conversation, list and delete it.

Hints the tutor gives about the item being practised count as hints used, exactly as if
the learner had pressed "Show a hint".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from learnloop.content.models import Item, Lesson
from learnloop.errors import Forbidden, InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.llm import tutor
from learnloop.llm.providers.offline import LessonIndex, lesson_index
from learnloop.services.auth import CurrentUser
from learnloop.services.context import ActivePack, AppContext
from learnloop.services.llm_usage import gateway_for
from learnloop.services.mastery import load_model, mastery_of
from learnloop.store.models import PendingItem, Response, TutorConversation, TutorMessage, utcnow

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
    created_at: datetime


class ConversationView(BaseModel):
    id: int
    item_id: str | None
    lesson_id: str | None
    created_at: datetime
    updated_at: datetime
    messages: list[MessageView]


class ConversationSummary(BaseModel):
    id: int
    item_id: str | None
    lesson_id: str | None
    first_question: str
    messages: int
    updated_at: datetime


def _message_view(m: TutorMessage) -> MessageView:
    return MessageView(
        id=m.id,
        role=m.role,
        content=m.content,
        provider=m.provider,
        citations=[CitationView(**c) for c in m.citations or []],
        notices=list(m.notices or []),
        created_at=m.created_at,
    )


def _conversation_view(session: Session, conv: TutorConversation) -> ConversationView:
    messages = (
        session.execute(
            select(TutorMessage).where(TutorMessage.conversation_id == conv.id).order_by(TutorMessage.id)
        )
        .scalars()
        .all()
    )
    return ConversationView(
        id=conv.id,
        item_id=conv.item_id,
        lesson_id=conv.lesson_id,
        created_at=conv.created_at,
        updated_at=conv.updated_at,
        messages=[_message_view(m) for m in messages],
    )


def _own_conversation(session: Session, user: CurrentUser, conversation_id: int) -> TutorConversation:
    conv = session.get(TutorConversation, conversation_id)
    if conv is None or conv.user_id != user.id:
        raise NotFound(_("No such conversation."))
    return conv


def _finished(session: Session, user_id: int, item_id: str) -> bool:
    return (
        session.execute(
            select(Response.id).where(Response.user_id == user_id, Response.item_id == item_id).limit(1)
        ).first()
        is not None
    )


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
    pending = session.get(PendingItem, user.id)
    finished = _finished(session, user.id, item.id) if item is not None else False
    hints_shown = 0
    if item is not None and pending is not None and pending.item_id == item.id:
        hints_shown = pending.hints_shown
    protected: list[Item] = []
    if item is not None and not finished:
        protected.append(item)
    if (
        pending is not None
        and pending.item_id in active.items
        and (item is None or pending.item_id != item.id)
    ):
        # The learner is working on another item: the tutor must not give that one away either.
        other = active.items[pending.item_id]
        if not _finished(session, user.id, other.id):
            protected.append(other)
    model = load_model(session)
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


def _prepare(
    ctx: AppContext,
    user: CurrentUser,
    question: str,
    item_id: str | None,
    lesson_id: str | None,
    conversation_id: int | None,
    in_assessment: bool,
) -> tuple[tutor.TutorSituation, LessonIndex, int | None, str | None, str | None]:
    if in_assessment:
        raise Forbidden(_("The tutor is not available during a skill check."))
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
        active = ctx.active_pack(session)
        history: list[tuple[str, str]] = []
        if conversation_id is not None:
            conv = _own_conversation(session, user, conversation_id)
            item_id, lesson_id = conv.item_id, conv.lesson_id
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
        return _conversation_view(session, conv)


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
    situation, index, conversation_id, item_id, lesson_id = _prepare(
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
    situation, index, conversation_id, item_id, lesson_id = _prepare(
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
        return _conversation_view(session, _own_conversation(session, user, conversation_id))


def latest_conversation(
    ctx: AppContext, user: CurrentUser, *, item_id: str | None = None, lesson_id: str | None = None
) -> ConversationView | None:
    """The learner's newest conversation about this item or lesson (for the chat panel)."""
    with ctx.session() as session:
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
        return _conversation_view(session, conv) if conv is not None else None


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
