"""The translations of mail and text messages: every language has every English template, each
uses exactly the placeholders of its English original, and each renders in its own language."""

from datetime import date
from pathlib import Path

import pytest
from jinja2 import Environment, meta

from services.mail_templates import TEMPLATES, render_email, render_sms
from services.money import Money

ENGLISH = TEMPLATES / "en"
LANGUAGES = sorted(path.name for path in TEMPLATES.iterdir() if path.is_dir())
TRANSLATIONS = [language for language in LANGUAGES if language != "en"]
NAMES = sorted(path.name for path in ENGLISH.iterdir())

# A value for every placeholder any template uses; a template needing another fails to render.
VALUES: dict[str, object] = {
    "first_name": "Maria",
    "guest_name": "Tomás",
    "sender_name": "Inês",
    "title": "Alfama <loft>",
    "check_in": date(2027, 3, 1),
    "check_out": date(2027, 3, 4),
    "refund": Money(12_345, "EUR"),
    "amount": Money(9_900, "EUR"),
    "reason": "Plans changed",
    "link": "https://roost.example/trips",
    "code": "042917",
    "minutes": 10,
    "excerpt": "Is the flat quiet at night?",
}


def placeholders(path: Path) -> set[str]:
    """The names a template reads (the helpers every template is given aside)."""
    source = path.read_text(encoding="utf-8")
    # Parsed only, never rendered: escaping does not come into it.
    found = meta.find_undeclared_variables(Environment(autoescape=True).parse(source))
    return found - {"day", "money", "language"}


def test_english_and_portuguese_and_spanish_are_there() -> None:
    assert {"en", "pt", "es"} <= set(LANGUAGES)


@pytest.mark.parametrize("language", TRANSLATIONS)
def test_every_language_has_exactly_the_english_templates(language: str) -> None:
    assert sorted(path.name for path in (TEMPLATES / language).iterdir()) == NAMES


@pytest.mark.parametrize("language", TRANSLATIONS)
@pytest.mark.parametrize("name", NAMES)
def test_a_translation_uses_the_placeholders_of_its_original(language: str, name: str) -> None:
    translated = TEMPLATES / language / name
    assert placeholders(translated) == placeholders(ENGLISH / name)
    if name.endswith(".html"):
        assert '{% extends "base.html" %}' in translated.read_text(encoding="utf-8")


MESSAGES = sorted({name.removesuffix(".subject.txt") for name in NAMES if ".subject." in name})
TEXTS = sorted({name.removesuffix(".sms.txt") for name in NAMES if name.endswith(".sms.txt")})


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("message", MESSAGES)
def test_every_mail_renders_in_every_language(language: str, message: str) -> None:
    rendered = render_email(message, language, **VALUES)
    assert rendered.language == language
    assert "\n" not in rendered.subject
    for part in (rendered.subject, rendered.text, rendered.html):
        assert part.strip()
        assert "{{" not in part and "{%" not in part
    assert "Alfama &lt;loft&gt;" in rendered.html or "title" not in placeholders(
        TEMPLATES / language / f"{message}.html"
    )
    assert f'<html lang="{language}">' in rendered.html


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("text", TEXTS)
def test_every_text_message_renders_in_every_language(language: str, text: str) -> None:
    rendered = render_sms(text, language, **VALUES)
    assert rendered.startswith("Roost: ")
    assert "{{" not in rendered
    assert len(rendered) <= 320  # two SMS segments at most


def test_a_spanish_reader_gets_spanish_words() -> None:
    rendered = render_email("message_received", "es-MX", **VALUES)
    assert rendered.language == "es"
    assert rendered.subject == "Inês te ha enviado un mensaje sobre Alfama <loft>"
    assert "1 mar 2027" in render_sms("booking_confirmed_guest", "es", **VALUES)


def test_a_language_without_translations_reads_english() -> None:
    rendered = render_email("password_reset", "de-AT", **VALUES)
    assert rendered.language == "en"
    assert rendered.subject == "Reset your Roost password"
