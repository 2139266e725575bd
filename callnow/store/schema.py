"""Every table of CallNow in one metadata: what migrations, tests and tools compare against."""

from callnow.store import billing_models, models, session_models

TABLE_MODULES = (models, billing_models, session_models)
metadata = models.Base.metadata
