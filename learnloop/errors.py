"""The one error type of Learnloop's services, mapped once to HTTP statuses and CLI exits."""

from __future__ import annotations


class LearnloopError(Exception):
    """A request that cannot be served as asked; the message is safe to show to users."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


class NotFound(LearnloopError):
    status = 404
    code = "not_found"


class InvalidInput(LearnloopError):
    status = 422
    code = "invalid_input"


class Unauthorized(LearnloopError):
    status = 401
    code = "unauthorized"


class Forbidden(LearnloopError):
    status = 403
    code = "forbidden"


class Conflict(LearnloopError):
    status = 409
    code = "conflict"


class Unavailable(LearnloopError):
    """A part the request needs is off or busy (a model server, the code sandbox): try later."""

    status = 503
    code = "unavailable"


class TooLarge(LearnloopError):
    status = 413
    code = "too_large"


class RateLimited(LearnloopError):
    """Too many attempts; ``retry_after`` seconds until the next one is accepted."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: list[str] | None = None):
        super().__init__(message, details=details)
        self.retry_after = max(1, retry_after)
