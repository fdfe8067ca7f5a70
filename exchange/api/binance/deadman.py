"""The dead-man's switch endpoint (countdownCancelAll): to be built (issue 12)."""

from __future__ import annotations

from django.urls import URLPattern

urls: list[URLPattern] = []
