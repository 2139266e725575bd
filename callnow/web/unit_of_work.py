"""A database session whose work is committed before the response leaves.

`context.db` used as plain `Depends(db)` gets FastAPI's default dependency scope, "request": the
code after its `yield` (the commit) runs after the response has been sent. A browser following a
303 can then ask for the next page before the commit landed, and see the old state or a 404 for
a row that is about to exist. The routes that answer with a redirect use this alias instead:
scope "function" commits when the route returns, then the response is sent.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from callnow.web.context import db

CommittedSession = Annotated[Session, Depends(db, scope="function")]
