"""The summary models' admin pages are read-only: only the rollup writes those rows."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory

from reporting.models import (
    MarketDailyVolume,
    MarketMonthlyVolume,
    MarketYearlyVolume,
    UserDailyVolume,
    UserMonthlyVolume,
    UserYearlyVolume,
    VolumeCursor,
)

MODELS = [
    VolumeCursor,
    MarketDailyVolume,
    MarketMonthlyVolume,
    MarketYearlyVolume,
    UserDailyVolume,
    UserMonthlyVolume,
    UserYearlyVolume,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_staff_may_look_but_never_write(model, staff):
    request = RequestFactory().get("/")
    request.user = staff  # a superuser: only the admin class itself can refuse
    model_admin = admin.site._registry[model]

    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
