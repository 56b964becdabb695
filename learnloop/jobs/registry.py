"""The task registry: what a job may run, how often it is tried, and the scheduled tasks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from learnloop.config import Settings
    from learnloop.services.context import AppContext


@dataclass(frozen=True)
class JobRun:
    """One try of a job, as its task sees it."""

    job_id: int
    org_id: int | None
    #: 1 for the first try
    attempt: int
    max_attempts: int

    @property
    def last(self) -> bool:
        """No retry follows if this try fails: a task may fall back to a lesser result here."""
        return self.attempt >= self.max_attempts


class PermanentFailure(Exception):
    """Raised by a task whose retry cannot succeed: the job is dead-lettered at once."""


#: a task: (context, payload, this try) -> a small JSON-able result or None
TaskFn = Callable[["AppContext", dict[str, Any], JobRun], "dict[str, Any] | None"]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    fn: TaskFn
    #: tries before the job is dead-lettered (None: the jobs_max_attempts setting)
    max_attempts: int | None = None


@dataclass(frozen=True)
class PeriodicSpec:
    task: str
    #: hours between runs, read from the settings (0: off)
    every_h: Callable[[Settings], float]


TASKS: dict[str, TaskSpec] = {}
PERIODIC: list[PeriodicSpec] = []


def task(name: str, *, max_attempts: int | None = None) -> Callable[[TaskFn], TaskFn]:
    """Register ``fn`` as the task ``name`` (``enqueue(ctx, name, payload)`` runs it later)."""

    def register(fn: TaskFn) -> TaskFn:
        if name in TASKS and TASKS[name].fn is not fn:
            raise ValueError(f"the task {name!r} is already registered")
        TASKS[name] = TaskSpec(name=name, fn=fn, max_attempts=max_attempts)
        return fn

    return register


def periodic(task_name: str, every_h: Callable[[Settings], float]) -> None:
    """Have the workers enqueue ``task_name`` (empty payload) every ``every_h(settings)`` hours."""
    if all(p.task != task_name for p in PERIODIC):
        PERIODIC.append(PeriodicSpec(task=task_name, every_h=every_h))


def load_tasks() -> None:
    """Import the modules that register the product's tasks (once)."""
    import learnloop.jobs.tasks  # noqa: F401
