"""Reason lines name a different target skill, or say plainly that the skill is the target."""

from __future__ import annotations

from learnloop.services.guidance import reason_text


def test_a_skill_that_is_its_own_target_is_not_a_step_toward_itself() -> None:
    for reason in ("lesson", "next_step"):
        own = reason_text(reason, "Tokens", "Tokens")
        assert "toward Tokens" not in own and "itself a target" in own
        assert "itself a target" in reason_text(reason, "Tokens", None)
    assert reason_text("lesson", "Tokens", "Prompts") == "New skill: Tokens, a step toward Prompts"
    assert reason_text("next_step", "Tokens", "Prompts") == "Next step toward Prompts"
