"""All settings in one place, read from ``LEARNLOOP_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_PACK = PACKAGE_DIR.parent / "packs" / "ai_era"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEARNLOOP_", env_file=None)

    database_url: str = "sqlite:///./learnloop.db"
    default_pack: Path = DEFAULT_PACK
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = "change-me-in-production"
    #: Webhook targets may resolve to loopback, private, link-local (cloud metadata) or other
    #: non-public addresses: only for receivers inside your own network (off: refused, against
    #: server-side request forgery; checked when registered and again at each delivery).
    webhooks_allow_private: bool = False
    #: The key (any string) that encrypts webhook signing secrets at rest; empty: derived from
    #: secret_key. Changing it makes the stored secrets unreadable (re-create the endpoints).
    webhooks_secret_key: SecretStr = SecretStr("")
    session_days: int = 14
    default_locale: str = "en"
    #: Mastery probability at which a prerequisite counts as unlocked for the next skill.
    unlock_mastery: float = 0.6
    #: Predicted success the practice policy aims for when choosing an item.
    target_success: float = 0.7
    #: A role target counts as met only with right answers on this many distinct items of the
    #: skill (a family of generated variants counts once) ...
    target_min_items: int = 4
    #: ... a right answer to a text or code item where the skill has enabled ones ...
    target_needs_open_kind: bool = True
    #: ... a right answer on the skill within this many days (0: no limit) ...
    target_max_age_days: float = 180.0
    #: ... and this much evidence against guessing (nats of the CUSUM, science/evidence.py).
    target_evidence_nats: float = 10.0
    #: Practice: an item whose key was shown does not return for this many answers.
    practice_repeat_gap: int = 20
    #: Code items (learnloop.sandbox): wall-clock limit of one submission, all its cases together
    code_timeout_s: float = 5.0
    #: address-space limit of the sandboxed interpreter (NumPy and pandas need about 300 MB)
    code_memory_mb: int = 512
    #: the interpreter inside the sandbox: the operating system's, with its NumPy and pandas
    code_python: str = "/usr/bin/python3"
    #: the unprivileged account submissions run as when the server runs as root
    code_user: str = "learnloop-sandbox"
    #: submissions running at once across all server processes; the rest wait in line
    code_max_concurrent: int = Field(default=2, ge=1, le=64)
    #: how long a submission waits for a free slot before the learner is asked to retry
    code_queue_wait_s: float = 20.0
    #: attempts at a code item within one presentation before the reference solution is shown
    #: (only the first counts for mastery, knowledge tracing and item statistics)
    code_attempts: int = Field(default=3, ge=1, le=10)
    max_answer_bytes: int = 64_000
    #: the site is reached over HTTPS (directly or behind a TLS proxy): every cookie gets the
    #: Secure flag and responses carry Strict-Transport-Security
    cookie_secure: bool = False
    #: Strict-Transport-Security max-age when cookie_secure is on (0: no header)
    hsts_seconds: int = 31_536_000
    #: a login ends after this many minutes without a request (0: only session_days applies)
    session_idle_minutes: int = 480
    #: the largest request body, counted as it streams in (chunked bodies included)
    max_body_bytes: int = 256_000
    #: login throttling: failed attempts allowed per e-mail address and per client address
    #: within one window of login_window_s seconds; then HTTP 429 until the window ends
    login_window_s: int = 900
    login_account_failures: int = 10
    login_address_failures: int = 100
    #: the least zxcvbn score (0-4) a new password needs; common and leaked passwords always fail
    password_min_score: int = 2
    #: when set, /metrics needs `Authorization: Bearer <token>`
    metrics_token: SecretStr = SecretStr("")
    #: Reports: the smallest group whose aggregate figures a manager may see (privacy).
    report_min_group: int = 5
    #: Reports: share of a role's targets met for a learner to count as close to ready.
    report_close_share: float = 0.75
    #: Reports: completed weeks in the trend of the team reports.
    report_trend_weeks: int = 12
    #: Reports: the most recent answers the item analysis reads (all of them in most organisations).
    report_item_window: int = 200_000

    # Large models as a service (learnloop.llm). Each task has an ordered fallback list of
    # providers, e.g. LEARNLOOP_LLM_TUTOR=openai_compat,offline. Empty per-task endpoint
    # fields inherit the LEARNLOOP_LLM_BASE_URL / _API_KEY / _MODEL / _TIMEOUT_S defaults.
    llm_tutor: str = "offline"
    llm_grade: str = "offline"
    llm_author: str = "offline"
    llm_embed: str = "offline"
    llm_base_url: str = ""
    llm_api_key: SecretStr = SecretStr("")
    llm_model: str = ""
    llm_timeout_s: float = 20.0
    llm_tutor_base_url: str = ""
    llm_tutor_api_key: SecretStr = SecretStr("")
    llm_tutor_model: str = ""
    llm_tutor_timeout_s: float | None = None
    llm_grade_base_url: str = ""
    llm_grade_api_key: SecretStr = SecretStr("")
    llm_grade_model: str = ""
    llm_grade_timeout_s: float | None = None
    llm_author_base_url: str = ""
    llm_author_api_key: SecretStr = SecretStr("")
    llm_author_model: str = ""
    llm_author_timeout_s: float | None = None
    llm_embed_base_url: str = ""
    llm_embed_api_key: SecretStr = SecretStr("")
    llm_embed_model: str = ""
    llm_embed_timeout_s: float | None = None
    #: extra attempts after a failed model call, with exponential backoff from llm_backoff_s
    llm_retries: int = 1
    llm_backoff_s: float = 0.5
    llm_cache: bool = True
    #: US dollars per million prompt / completion tokens, for cost accounting
    llm_price_prompt_per_mtok: float = 0.0
    llm_price_completion_per_mtok: float = 0.0
    #: monthly budget per organisation in US dollars (0: none) unless an admin sets one
    llm_default_budget_usd: float = 0.0
    #: threads for local sentence embeddings (torch); small machines do best with 1-2
    llm_embed_threads: int = 1
    #: load the local models and embed the lessons in the background when the app starts
    #: (/healthz answers 503 "starting" until done), so the first tutor reply is quick
    llm_warm_up: bool = True
    #: below this confidence a model grade goes to the instructor review queue. 0.85 is the
    #: lowest value at which no wrong verdict of the adversarial answers of four domains (data,
    #: eval, llm, ml) skips review; the other four domains are the held-out check
    #: (tests/llm/adversarial/README.md)
    llm_review_confidence: float = 0.85
    #: reply lengths per task (tokens); small values keep a CPU-served model quick
    llm_tutor_max_tokens: int = 300
    llm_grade_max_tokens: int = 300

    #: requests a server process handles at once (the threads that run the route handlers;
    #: the others wait in turn). Each holds a database connection, and the pools keep this many
    #: open (store/db.POOL_SIZE), so a burst opens no new connections. More threads than this
    #: only take turns at Python's global interpreter lock: on PostgreSQL run more processes
    #: (`--workers`) instead
    request_threads: int = Field(default=8, ge=1, le=32)

    # Background jobs (learnloop/jobs): a table of jobs on every backend; workers claim them
    # with SKIP LOCKED and wake on LISTEN/NOTIFY on PostgreSQL, a polling thread on SQLite.
    #: "thread": every server process runs a worker (`learnloop serve` needs nothing else);
    #: "off": jobs wait for `learnloop worker`
    jobs_worker: str = Field(default="thread", pattern="^(thread|off)$")
    #: how often an idle worker looks for due jobs (seconds; PostgreSQL's also wake on NOTIFY)
    jobs_poll_s: float = Field(default=1.0, gt=0)
    #: tries of a job before it is dead-lettered, and the first retry's delay (doubling after)
    jobs_max_attempts: int = Field(default=5, ge=1, le=50)
    jobs_backoff_s: float = Field(default=5.0, ge=0)
    jobs_max_backoff_s: float = Field(default=900.0, ge=0)
    #: a job still "running" this long after it started is taken as lost (its worker died)
    jobs_stale_after_s: float = Field(default=1800.0, gt=0)
    #: hours between scheduled runs of `fit kt`, `fit irt` and the weekly report snapshots (0: off);
    #: the first scheduled check comes jobs_periodic_delay_s after a worker starts
    jobs_fit_kt_every_h: float = Field(default=24.0, ge=0)
    jobs_fit_irt_every_h: float = Field(default=24.0, ge=0)
    jobs_snapshots_every_h: float = Field(default=6.0, ge=0)
    jobs_periodic_delay_s: float = Field(default=600.0, ge=0)
    #: a free-text answer whose grade route starts with a model is graded by a job: the learner
    #: sees "being graded" and mastery moves when the grade lands (false: graded in the request)
    grade_in_background: bool = True

    # E-mail (services/people/mail.py): invitations and reminders go through an outbox table and
    # the job queue to this SMTP server; with no host they wait in the outbox.
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "Learnloop <learnloop@localhost>"
    #: STARTTLS after connecting (port 587); smtp_ssl: TLS from the start (port 465)
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    #: the address people reach this installation at, for the links in e-mails
    public_url: str = "http://127.0.0.1:8000"
    #: hours between reminder rounds (due reviews, inactivity; 0: off), days without an answer
    #: after which a learner is reminded, and days an invitation link stays valid
    reminders_every_h: float = Field(default=24.0, ge=0)
    reminder_inactive_days: int = Field(default=7, ge=1)
    invitation_days: int = Field(default=7, ge=1, le=90)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
