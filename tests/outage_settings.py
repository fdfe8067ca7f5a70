"""Settings of the uvicorn process that tests/test_db_outage.py starts: the test settings
with probe routes added under /api/ (tests/outage_urls.py), since the project serves no
API routes of its own yet. Everything else, the middleware included, is the real stack."""

from exchange.settings.test import *  # noqa: F403

ROOT_URLCONF = "tests.outage_urls"
