"""The words of the mail and text messages Roost sends, from Jinja2 templates in
``services/templates/<language>/``, in the reader's language when it has a translation.

A message ``name`` is ``name.subject.txt``, ``name.txt`` and ``name.html`` (email) or
``name.sms.txt`` (text message). All parts come from one language, the first of the user's tag
(``pt-BR``), its base (``pt``) and English that has the message. HTML is escaped, text is not:
what users wrote (a listing's title, a name) goes into both.
"""

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.money import Money

TEMPLATES = Path(__file__).parent / "templates"
FALLBACK = "en"


@dataclass(frozen=True)
class RenderedEmail:
    language: str
    subject: str
    text: str
    html: str


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def languages(tag: str) -> list[str]:
    """Where to look for a user whose language is ``tag``, best first."""
    tried: list[str] = []
    for candidate in (tag, tag.split("-")[0].lower(), FALLBACK):
        if candidate and candidate not in tried:
            tried.append(candidate)
    return tried


def _language_of(name: str, tag: str) -> str:
    for language in languages(tag):
        if (TEMPLATES / language / name).is_file():
            return language
    raise LookupError(f"no template {name} in English")


def _locale(language: str) -> str:
    try:
        return str(Locale.parse(language.replace("-", "_")))
    except (UnknownLocaleError, ValueError):
        return FALLBACK


def _render(path: str, language: str, values: dict[str, object]) -> str:
    locale = _locale(language)

    def day(value: date) -> str:
        return format_date(value, format="medium", locale=locale)

    def money(value: Money) -> str:
        return value.formatted(locale)

    template = _environment().get_template(path)
    return template.render(**values, day=day, money=money, language=language)


def render_email(name: str, tag: str, **values: object) -> RenderedEmail:
    language = _language_of(f"{name}.txt", tag)
    return RenderedEmail(
        language=language,
        # A subject is one line whatever the template's layout.
        subject=" ".join(_render(f"{language}/{name}.subject.txt", language, values).split()),
        text=_render(f"{language}/{name}.txt", language, values),
        html=_render(f"{language}/{name}.html", language, values),
    )


def render_sms(name: str, tag: str, **values: object) -> str:
    language = _language_of(f"{name}.sms.txt", tag)
    return _render(f"{language}/{name}.sms.txt", language, values).strip()
