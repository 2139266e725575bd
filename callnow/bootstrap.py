"""What a process does before serving: settings checked, schema migrated, secrets in place."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from callnow.config import Settings
from callnow.store import provisioning
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
        engine.dispose()
    return settings, seeded
