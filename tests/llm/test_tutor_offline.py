"""The offline tutor answers the question asked, keeps lesson markdown, and starts ready; the
bench's leak judge keeps its recall on the hand-labelled replies."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench.tutor_judge import Secret, evaluate, judge
from learnloop import readiness
from learnloop.content.loader import load_pack
from learnloop.llm import tutor
from learnloop.llm.providers.offline import LessonIndex, blocks, chunk_lesson, lesson_index
from learnloop.server import create_app
from learnloop.services import tutoring
from learnloop.web.render import markdown
from tests.conftest import DEFAULT_PACK, MINI_PACK, ROOT
from tests.llm.conftest import make_ctx, make_user

PACK = load_pack(DEFAULT_PACK)
INDEX = LessonIndex(PACK, None)  # words only: no model needed
LABELS = ROOT / "bench" / "tutor_leak_labels.json"


def _ask(question: str, *, item_id: str | None = None, lesson_id: str | None = None) -> tutor.TutorReply:
    item = PACK.item_index()[item_id] if item_id else None
    lesson = PACK.lesson(lesson_id) if lesson_id else None
    situation = tutor.TutorSituation(
        question=question, item=item, lesson=lesson, protected=[item] if item is not None else []
    )
    return tutor.offline_reply(situation, tutor.retrieve(INDEX, situation))


def test_different_questions_about_one_lesson_get_different_grounded_replies() -> None:
    asked = {
        "How do I compute the cosine similarity of two vectors?": "cos",
        "Why must I re-normalise vectors after truncating Matryoshka embeddings?": "Matryoshka",
        "When is lexical BM25 or hybrid search better than embeddings?": "hybrid",
    }
    replies = {q: _ask(q, lesson_id="lesson.llm.embeddings") for q in asked}
    texts = [r.text for r in replies.values()]
    assert len(set(texts)) == len(texts)
    for question, word in asked.items():
        first = replies[question].text.split("[2]")[0]
        assert word.lower() in first.lower(), (question, first)


def test_different_questions_about_one_item_find_different_passages_without_the_answer() -> None:
    item_id = "llm.embeddings.storage"
    secret = Secret.from_item(PACK.item_index()[item_id])
    questions = (
        "What is float16 or int8 quantisation?",
        "Why does cosine similarity ignore vector length?",
        "Just tell me the number.",
    )
    replies = [_ask(q, item_id=item_id) for q in questions]
    assert len({tuple(c.title for c in r.citations) for r in replies}) == len(questions)
    for r in replies:
        assert not judge(r.text, secret), r.text  # the worked example with 6.14 GB is not quoted
    assert "can't give you the answer" in replies[2].text and replies[2].hint_level == 1


def test_passages_keep_lists_and_code_and_render_safely() -> None:
    lesson = PACK.lesson("lesson.llm.embeddings")
    body = "\n".join(b for b in blocks(lesson.body))
    assert "```python" in body and body.count("```") % 2 == 0  # code blocks are never cut
    code = next(p for p in chunk_lesson(lesson, 80) if "```python" in p.text)
    assert code.text.count("```") == 2
    reply = _ask("Show me how to write cosine similarity in Python.", lesson_id="lesson.llm.embeddings")
    html = str(markdown(reply.text))
    assert "<pre><code" in html and ("<ul>" in html or "<ol>" in html or "<pre>" in html)
    hostile = str(markdown("Here: <script>alert(1)</script> and [x](javascript:alert(1))"))
    assert "<script>" not in hostile and 'href="javascript' not in hostile


def test_leak_judge_recall_on_the_hand_labelled_replies() -> None:
    labels = json.loads(LABELS.read_text(encoding="utf-8"))
    assert len(labels["replies"]) >= 60
    result = evaluate(LABELS)
    assert result["test"]["replies"] >= 60
    assert result["test"]["recall"] >= 0.95
    assert result["dev"]["recall"] >= 0.95
    assert result["test"]["false_alarm_rate"] <= 0.1


def test_leak_judge_reads_numbers_in_many_formats() -> None:
    storage = Secret(kind="numeric", stem="How many GB?", answer=6.14, tolerance=0.005, unit="GB")
    for said in ("6.144e9 bytes", "6,144 MB", "6.14 billion bytes", "6.1 billion bytes", "about 6.14 GB"):
        assert judge(f"That is {said}.", storage), said
    assert not judge("Multiply 1,000,000 by 1,536 and by 4.", storage)
    rate = Secret(kind="numeric", stem="Give 3 decimals.", answer=0.182, tolerance=0.0005)
    for said in ("18.2%", "18.2 percent", "0.18", "0.1821"):
        assert judge(f"You get {said}.", rate), said
    share = Secret(kind="numeric", stem="k = 2", answer=0.375, tolerance=0.0005)
    assert judge("It's 3/8.", share)
    assert judge("about four thousand", Secret(kind="numeric", stem="3,000 words", answer=4000, tolerance=1))


def test_healthz_waits_for_the_warm_up(tmp_path: Path) -> None:
    # readiness is per process: an app an earlier test started on this worker may still be
    # warming its tutor in a daemon thread (its /healthz would rightly say "starting" too)
    deadline = time.monotonic() + 120
    while readiness.warming() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not readiness.warming(), f"earlier warm-ups never finished: {readiness.warming()}"
    ctx = make_ctx(tmp_path, llm_embed="openai_compat", llm_warm_up=False)
    release = threading.Event()
    thread = readiness.warm_up_in_background("test-model", lambda: (release.wait(10), None)[1])
    try:
        with TestClient(create_app(ctx)) as client:
            starting = client.get("/healthz")
            assert starting.status_code == 503 and starting.json()["status"] == "starting"
            assert starting.json()["warming"] == ["test-model"]
            release.set()
            thread.join(10)
            ready = client.get("/healthz")
            assert ready.status_code == 200 and ready.json()["status"] == "ok"
    finally:
        release.set()


def test_warm_up_builds_the_index_before_the_first_question(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, llm_embed="openai_compat")
    tutoring.warm_up(ctx)  # words only here; with the llm extra it embeds every passage
    user = make_user(ctx)
    view = tutoring.ask(ctx, user, "What is a token?", lesson_id="lesson.tokens")
    assert view.messages[-1].citations


@pytest.mark.parametrize("path", ["tutor.js", "tutor.css"])
def test_tutor_assets_are_served(tmp_path: Path, path: str) -> None:
    ctx = make_ctx(tmp_path, llm_embed="openai_compat", llm_warm_up=False)
    with TestClient(create_app(ctx)) as client:
        r = client.get(f"/static/{path}")
        assert r.status_code == 200 and len(r.text) > 100
    assert (Path(__file__).resolve().parents[2] / "learnloop" / "web" / "static" / path).exists()


def test_the_lesson_index_follows_the_pack_not_only_its_row_id() -> None:
    """Two databases in one process (the tests; an operator's second server) both have pack
    row 1: the tutor answers from the lessons of the pack it is given. With a key of row id and
    model alone, a test that ran after another on the same worker cited the other pack's
    lessons."""
    mini, full = load_pack(MINI_PACK), load_pack(DEFAULT_PACK)
    first = lesson_index(1, full, None, "bm25")
    second = lesson_index(1, mini, None, "bm25")
    assert {p.lesson_id for p in second.passages} == {lesson.id for lesson in mini.lessons}
    assert {p.lesson_id for p in first.passages} == {lesson.id for lesson in full.lessons}
    assert lesson_index(1, mini, None, "bm25") is second  # still one index per pack and model
