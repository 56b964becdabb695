"""Translators between learning standards and Learnloop's own data (no database, no HTTP).

``xapi``: xAPI 1.0.3 statements out. The services in ``learnloop/services/`` (``xapi_outbox``)
decide when a statement is due and deliver it."""
