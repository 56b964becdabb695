"""Start Ralph (run by .venv-ralph's Python, never imported by Learnloop's).

Ralph 5.1's file-system LRS backend writes every request to one file with the operation
"create", so every write after the first fails with "already exists" (HTTP 500). The one change
made here: that backend appends instead. Everything else (validation, the 409 for a known
statement id, authentication, queries) is Ralph's own.

usage: python ralph_server.py PORT
"""

import sys

import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend

FSLRSBackend.default_operation_type = BaseOperationType.APPEND

if __name__ == "__main__":
    uvicorn.run("ralph.api:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
