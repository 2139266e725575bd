"""Alembic environment: runs our migrations against the URL given by callnow.store.db."""

from alembic import context
from sqlalchemy import create_engine

import callnow.store.billing_models  # noqa: F401
from callnow.store.models import Base

config = context.config


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
