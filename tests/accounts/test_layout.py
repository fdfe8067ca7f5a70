"""The page frame: the header's buttons are legible, /favicon.ico exists, and the home page
claims only what the exchange does today."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.models import User

CSS = Path(settings.BASE_DIR) / "static" / "css" / "app.css"
FAVICON = Path(settings.BASE_DIR) / "static" / "favicon.ico"
WCAG_AA = 4.5  # minimum contrast ratio for normal-size text

# An element as (tag, classes); a chain lists it after its ancestors, outermost first.
Element = tuple[str, frozenset[str]]
HEADER: list[Element] = [
    ("body", frozenset()),
    ("header", frozenset({"topbar"})),
    ("div", frozenset({"container", "topbar-inner"})),
    ("nav", frozenset({"nav"})),
]


# --- a small cascade: enough of CSS for the rules app.css writes


def _rules(css: str) -> list[tuple[str, dict[str, str]]]:
    """(selector, declarations) of the top-level rules, in order; @media blocks skipped
    (they are for narrow screens), comments removed."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules: list[tuple[str, dict[str, str]]] = []
    depth, start, selector = 0, 0, ""
    for i, char in enumerate(css):
        if char == "{":
            if depth == 0:
                selector, start = css[start:i].strip(), i + 1
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                if not selector.startswith("@"):
                    body = css[start:i]
                    declarations = {
                        name.strip(): value.strip()
                        for name, _, value in (d.partition(":") for d in body.split(";"))
                        if value
                    }
                    rules.extend((s.strip(), declarations) for s in selector.split(","))
                start = i + 1
    return rules


def _matches(compound: str, element: Element) -> bool:
    if re.search(r"[:\[#>+~*]", compound):  # states, attributes, ids: not a resting element
        return False
    tag, *classes = compound.split(".")
    return (not tag or tag == element[0]) and set(classes) <= element[1]


def _specificity(selector: str, chain: list[Element]) -> tuple[int, int] | None:
    """(classes, tags) when `selector` matches the chain's last element, else None."""
    parts = selector.split()
    if not parts or not _matches(parts[-1], chain[-1]):
        return None
    ancestors = iter(reversed(chain[:-1]))
    for part in reversed(parts[:-1]):
        if not any(_matches(part, element) for element in ancestors):
            return None
    classes = sum(part.count(".") for part in parts)
    tags = sum(1 for part in parts if part.split(".")[0])
    return classes, tags


def _value(prop: str, chain: list[Element], rules: list[tuple[str, dict[str, str]]]) -> str:
    """The cascaded value of `prop` on the chain's last element (inherited if unset)."""
    for depth in range(len(chain), 0, -1):
        best: tuple[tuple[int, int], int, str] | None = None
        for order, (selector, declarations) in enumerate(rules):
            spec = _specificity(selector, chain[:depth])
            if spec is None or prop not in declarations:
                continue
            if best is None or (spec, order) >= best[:2]:
                best = (spec, order, declarations[prop])
        if best is not None or prop != "color":  # only color inherits here
            return best[2] if best else "transparent"
    raise AssertionError(f"no {prop} anywhere")


def _rgba(value: str, variables: dict[str, str]) -> tuple[float, float, float, float]:
    value = variables.get(value[4:-1], value) if value.startswith("var(") else value
    if value.startswith("#"):
        return (*(int(value[i : i + 2], 16) for i in (1, 3, 5)), 1.0)  # type: ignore[return-value]
    if value == "transparent":
        return (0, 0, 0, 0.0)
    r, g, b, a = (float(x) for x in re.findall(r"[\d.]+", value))
    return r, g, b, a


def _luminance(rgb: tuple[float, ...]) -> float:
    def linear(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_in_header(element: Element) -> float:
    """WCAG contrast of `element`'s text against what shows behind it in the top bar."""
    rules = _rules(CSS.read_text())
    variables = {k: v for s, d in rules if s == ":root" for k, v in d.items()}
    chain = [*HEADER, element]
    text = _rgba(_value("color", chain, rules), variables)
    backdrop: tuple[float, ...] = _rgba(_value("background", chain[:1], rules), variables)[:3]
    for depth in range(2, len(chain) + 1):  # paint each layer over the one below
        r, g, b, a = _rgba(_value("background", chain[:depth], rules), variables)
        backdrop = tuple(
            a * c + (1 - a) * under for c, under in zip((r, g, b), backdrop, strict=True)
        )
    lighter, darker = sorted((_luminance(text[:3]), _luminance(backdrop)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


# --- the tests


@pytest.mark.django_db
def test_sign_out_button_is_legible_on_the_dark_header(client: Client, alice: User) -> None:
    client.force_login(alice)

    body = client.get(reverse("wallet")).content.decode()

    assert re.search(r'<form action="/accounts/logout/" method="post" class="inline">', body)
    assert '<button type="submit" class="btn btn-ghost btn-sm">Sign out</button>' in body
    sign_out = ("button", frozenset({"btn", "btn-ghost", "btn-sm"}))
    assert contrast_in_header(sign_out) >= WCAG_AA


@pytest.mark.django_db
def test_create_account_button_stays_legible(client: Client) -> None:
    body = client.get(reverse("home")).content.decode()

    assert 'class="btn btn-primary btn-sm" href="/accounts/signup/"' in body
    assert contrast_in_header(("a", frozenset({"btn", "btn-primary", "btn-sm"}))) >= WCAG_AA


@pytest.mark.django_db
def test_favicon_is_served_at_the_root(client: Client) -> None:
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert response.content == FAVICON.read_bytes()
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert "max-age=" in response["Cache-Control"]
    assert client.post("/favicon.ico").status_code == 405


@pytest.mark.django_db
def test_pages_link_the_favicon(client: Client) -> None:
    body = client.get(reverse("home")).content.decode()

    assert '<link rel="icon" href="/favicon.ico"' in body


@pytest.mark.django_db
def test_home_page_promises_no_api_that_does_not_exist(client: Client) -> None:
    body = client.get(reverse("home")).content.decode()

    assert "Binance" not in body
    assert "compatible with the tools you already run" not in body
    assert "The trading API they sign requests for is not open yet." in body
