"""The OpenAPI schema of both APIs builds without errors or warnings and is browsable from
vendored files (nothing from a CDN)."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command

from tests.api.conftest import call

pytestmark = pytest.mark.django_db


def test_the_schema_validates_without_warnings() -> None:
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert out.getvalue().startswith("openapi: 3")


def test_schema_and_docs_are_served_from_local_files(live_api: str) -> None:
    schema = call(live_api, "GET", "/api/schema/", headers={"Accept": "application/json"})
    assert schema.status == 200
    assert schema.body["openapi"].startswith("3.")
    for page in ("/api/docs/", "/api/redoc/"):
        answer = call(live_api, "GET", page)
        assert answer.status == 200, page
        html = answer.body
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources, page
        assert not [s for s in sources if s.startswith(("http://", "https://", "//"))], sources
        for source in sources:
            if source.startswith("/static/"):
                assert call(live_api, "GET", source).status == 200, source
