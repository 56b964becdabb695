"""All settings in one place, read from ``LEARNLOOP_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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
    session_days: int = 14
    default_locale: str = "en"
    #: Mastery probability at which a prerequisite counts as unlocked for the next skill.
    unlock_mastery: float = 0.6
    #: Predicted success the practice policy aims for when choosing an item.
    target_success: float = 0.7
    code_timeout_s: float = 5.0
    code_memory_mb: int = 256
    max_answer_bytes: int = 64_000
    cookie_secure: bool = False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
