"""Every table of CallNow in one metadata: what migrations, tests and tools compare against."""

from callnow.store import billing_models, models, notify_models, provider_models, session_models

TABLE_MODULES = (models, billing_models, notify_models, session_models, provider_models)
metadata = models.Base.metadata
