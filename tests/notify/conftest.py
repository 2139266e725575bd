"""The real SMTP server process, and the end-to-end rig for the whole-callback mail test."""

from tests.e2e.conftest import callback_service  # noqa: F401  (fixture)
from tests.support.smtp import smtp_server  # noqa: F401  (fixture)
