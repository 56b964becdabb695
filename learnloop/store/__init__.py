"""Persistence: SQLAlchemy 2 models, the session helper and Alembic migrations."""
