"""What a process does before serving: settings checked, schema migrated, secrets in place."""

from __future__ import annotations

import gc
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from callnow.billing.deck_store import import_deck, platform_deck_exists
from callnow.config import Settings
from callnow.store import provisioning
from callnow.store.billing_models import RateDeckRow
from callnow.store.db import make_engine, make_session_factory, migrate, transaction


def ensure_secret_key(settings: Settings) -> Settings:
    """Use the configured key, or one generated once into the data directory (mode 0600)."""
    if settings.web.secret_key:
        return settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = Path(settings.data_dir) / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    web = settings.web.model_copy(update={"secret_key": path.read_text().strip()})
    return settings.model_copy(update={"web": web})


# How long a thread may hold the GIL while another waits for it (CPython's default is 5 ms).
THREAD_SWITCH_INTERVAL_S = 0.001


def tune_thread_switching() -> None:
    """Hand the GIL over after 1 ms instead of 5 ms.

    A service process runs the event loop (web and engine), database work in worker threads and
    sippy's thread. A worker gives the GIL up at every SQLite statement and then waits for it
    again; while the loop is busy, each wait lasted up to the full interval, so a claim of nine
    statements could queue for 40 ms. Measured effect: docs/decisions/0006-gil-gc-tuning.md.
    """
    sys.setswitchinterval(THREAD_SWITCH_INTERVAL_S)


def freeze_startup_objects() -> None:
    """Leave what start-up built (modules, mappers, the app, the engine's stack) out of the
    cyclic garbage collector's work from now on.

    Those objects live as long as the process. Every full collection walked them all again,
    stopping every thread meanwhile (docs/decisions/0006-gil-gc-tuning.md). Called once a
    process is ready to serve, after a collection, so no start-up garbage is kept for good.
    """
    gc.collect()
    gc.freeze()


def prepare(settings: Settings) -> tuple[Settings, bool]:
    """Migrate and seed; returns the settings to run with and whether demo data was created."""
    settings = ensure_secret_key(settings)
    url = settings.effective_database_url
    migrate(url)
    seeded = False
    if settings.demo_data:
        engine = make_engine(url)
        with transaction(make_session_factory(engine)) as session:
            seeded = provisioning.seed_demo(session)
            seed_default_deck(session)
        engine.dispose()
    return settings, seeded


DEFAULT_DECK = Path(__file__).parent / "billing" / "default_deck.csv"


def seed_default_deck(session: Session) -> None:
    """A sample platform rate deck, so the demo can price mobile and overseas calls."""
    if platform_deck_exists(session):
        return
    deck = import_deck(
        session,
        DEFAULT_DECK.read_text(),
        None,
        "Sample platform deck",
        datetime(2020, 1, 1, tzinfo=UTC),
    )
    if not isinstance(deck, RateDeckRow):
        raise RuntimeError(f"the bundled rate deck does not import: {deck}")
