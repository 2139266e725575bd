"""The catalogue check: clean on the repository, and failing on each kind of fault."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po

from callnow.i18n import check

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_catalogues_and_templates_pass_the_check():
    problems = check.run()
    assert problems == [], "\n".join(map(str, problems))


def test_the_check_runs_as_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "callnow.i18n.check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "catalogues complete (domains: owner, prompts, visitor;" in done.stdout


def test_every_domain_has_a_template_and_a_catalogue_per_language():
    [visitor] = [d for d in check.domains() if d.name == "visitor"]
    assert visitor.template.exists()
    assert any(p.name == "page.html" for p in visitor.files("jinja2"))
    assert any(p.name == "visitor_text.py" for p in visitor.files("python"))


@pytest.fixture
def copied(tmp_path, monkeypatch):
    """The i18n directory copied, so a test can break a catalogue without touching the repo."""
    target = tmp_path / "i18n"
    target.mkdir()
    for item in check.I18N_DIR.glob("*.cfg"):
        shutil.copy(item, target)
    for item in check.I18N_DIR.glob("*.pot"):
        shutil.copy(item, target)
    shutil.copytree(check.LOCALE_DIR, target / "locale")
    monkeypatch.setattr(check, "I18N_DIR", target)
    monkeypatch.setattr(check, "LOCALE_DIR", target / "locale")
    return target


def _edit(path: Path, language: str, change) -> None:
    with path.open("rb") as po:
        catalog = read_po(po, locale=language)
    change(catalog)
    with path.open("wb") as po:
        write_po(po, catalog)


def _problems(domain_dir: Path) -> list[str]:
    [domain] = [d for d in check.domains() if d.name == "visitor"]
    return [str(p) for p in check.check_catalogues(domain)]


def test_a_missing_fuzzy_or_empty_translation_fails(copied):
    base = copied / "locale"
    _edit(base / "de/LC_MESSAGES/visitor.po", "de", lambda c: c.delete("Too many requests"))

    def fuzzy(catalog):
        catalog["Please wait"].flags.add("fuzzy")

    _edit(base / "fr/LC_MESSAGES/visitor.po", "fr", fuzzy)

    def empty(catalog):
        catalog["Your name"].string = ""

    _edit(base / "ja/LC_MESSAGES/visitor.po", "ja", empty)
    problems = _problems(copied)
    assert any("de/LC_MESSAGES" in p and "no entry for 'Too many requests'" in p for p in problems)
    assert any("fr/" in p and "fuzzy translation of 'Please wait'" in p for p in problems)
    assert any("ja/LC_MESSAGES" in p and "untranslated 'Your name'" in p for p in problems)
    assert len(problems) == 3


def test_a_missing_language_file_fails(copied):
    (copied / "locale/nl/LC_MESSAGES/visitor.po").unlink()
    assert any("nl/LC_MESSAGES/visitor.po" in p and "missing" in p for p in _problems(copied))


def test_changed_placeholders_fail(copied):
    def lose(catalog):
        catalog["We are calling %(name)s now."].string = "Wir rufen jetzt an."

    _edit(copied / "locale/de/LC_MESSAGES/visitor.po", "de", lose)

    def plural(catalog):
        key = "Your message (at most %(count)s character)"
        forms = list(catalog[key].string)
        forms[2] = forms[2].replace("%(count)s", "%(num)s")
        catalog[key].string = tuple(forms)

    _edit(copied / "locale/pl/LC_MESSAGES/visitor.po", "pl", plural)
    problems = _problems(copied)
    assert any("de/" in p and "placeholders differ" in p for p in problems)
    assert any("pl/" in p and "placeholders" in p for p in problems)


def test_too_few_plural_forms_fail(copied):
    def one_form(catalog):
        key = "A name is at most %(num)d character."
        catalog[key].string = (catalog[key].string[0],) + ("",) * 5

    _edit(copied / "locale/ar/LC_MESSAGES/visitor.po", "ar", one_form)
    assert any("needs 6 plural forms" in p for p in _problems(copied))


def test_a_stale_template_fails(copied):
    def drop(catalog):
        catalog.delete("Try again")

    _edit(copied / "visitor.pot", "en", drop)
    assert any("stale, lacks 'Try again'" in p for p in _problems(copied))


def test_template_literals_outside_gettext_are_found():
    source = """{% extends "base.html" %}
{% block title %}{% trans %}Please wait{% endtrans %} – CallNow{% endblock %}
{% block home %}/callnow/{{ id }}?embed=1{% endblock %}
<h1>{{ _("Hello") }}</h1>
<p>Too many requests</p>
<img src="x.png" alt="A picture">
<input type="submit" value="Send">
<input name="number" value="{{ values.number }}">
<span aria-label="{{ _('Progress') }}">42 % – 7</span>
<button title="Close">×</button>
<script>var s = "not a text node";</script>
{# a comment with words #}
"""
    found = check.untranslated_literals(source)
    assert found == [
        (5, "Too many requests"),
        (6, 'alt="A picture"'),
        (7, 'value="Send"'),
        (10, 'title="Close"'),
    ]


def test_placeholders_are_read_in_every_style():
    assert check.placeholders("%(name)s at %(time)s, %d of %s, {who}") == {
        "%(name)",
        "%(time)",
        "%d",
        "%s",
        "{who}",
    }
