"""The catalogue check: every shipped language complete, placeholders kept, no literal left.

Run it with `python -m callnow.i18n.check` (a test runs it too). Each gettext domain is one
Babel extraction config, `callnow/i18n/<domain>.cfg`; for each one found the check

1. extracts the domain's messages afresh and compares them with the committed template
   `<domain>.pot` (a stale template means `scripts/i18n.sh` was not run);
2. requires every shipped language but English to have `<domain>.po` holding every message,
   translated, not fuzzy, with every plural form filled in;
3. requires each translation to use the same placeholders as its source (`%(name)s`, `%s`,
   `{name}`), so no value is lost or invented at run time;
4. scans each HTML template the config lists for user-facing text outside `{% trans %}` and
   `_()`: text between tags and the `alt`, `title`, `placeholder`, `aria-label` attributes and
   the `value` of buttons. Only the brand, numbers and punctuation may stay literal.

A domain plugs in by adding its `.cfg`, running `scripts/i18n.sh` and translating its `.po`
files: nothing here names a domain.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from babel.util import pathmatch

from callnow.i18n.languages import DEFAULT_LANGUAGE, SHIPPED

I18N_DIR = Path(__file__).parent
LOCALE_DIR = I18N_DIR / "locale"
# Paths in a `.cfg` are relative to the repository's root (the directory holding `callnow/`).
ROOT = I18N_DIR.parent.parent

# Words that stay as they are in every language.
ALLOWED_WORDS = frozenset({"CallNow"})
CHECKED_ATTRIBUTES = frozenset({"alt", "title", "placeholder", "aria-label"})
BUTTON_INPUT_TYPES = frozenset({"submit", "button", "reset"})

_PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdifr]|%[-#0 +]*\d*[sdifr]|\{(\w*)\}")
_JINJA = re.compile(
    r"\{%-?\s*trans\b.*?%\}.*?\{%-?\s*endtrans\s*-?%\}"  # translated blocks: nothing to see
    r"|\{#.*?#\}"  # comments
    r"|\{%.*?%\}"  # statements
    r"|\{\{.*?\}\}",  # expressions: what they print is someone else's business
    re.DOTALL,
)
_HOLE = "\x00"  # where an expression stood


@dataclass(frozen=True)
class Problem:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(frozen=True)
class Domain:
    name: str
    config: Path

    @property
    def template(self) -> Path:
        return I18N_DIR / f"{self.name}.pot"

    def catalogue(self, language: str) -> Path:
        return LOCALE_DIR / language / "LC_MESSAGES" / f"{self.name}.po"

    def mapping(self) -> tuple[list[tuple[str, str]], dict[str, dict[str, str]]]:
        with self.config.open(encoding="utf-8") as fileobj:
            method_map, options_map = parse_mapping_cfg(fileobj, str(self.config))
        return method_map, options_map

    def files(self, method: str | None = None) -> list[Path]:
        """The repository files the config lists (for one extraction method, or any)."""
        method_map, _options = self.mapping()
        found: list[Path] = []
        for path in _repository_files():
            rel = path.relative_to(ROOT).as_posix()
            for pattern, how in method_map:
                if pathmatch(pattern, rel):
                    if method is None or how == method:
                        found.append(path)
                    break
        return found


def _rel(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def domains() -> list[Domain]:
    return [Domain(cfg.stem, cfg) for cfg in sorted(I18N_DIR.glob("*.cfg"))]


def _repository_files() -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(ROOT / "callnow"):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for filename in sorted(filenames):
            yield Path(dirpath) / filename


def extract(domain: Domain) -> dict[str, str | tuple[str, str]]:
    """The domain's messages as its config finds them now: msgid (or context + EOT + msgid)
    to the msgid, or to (singular, plural)."""
    method_map, options_map = domain.mapping()
    messages: dict[str, str | tuple[str, str]] = {}
    for _filename, _lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map
    ):
        key = _key(message, context)
        messages[key] = message if isinstance(message, str) else (message[0], message[1])
    return messages


def _key(message: str | tuple[str, ...] | list[str], context: str | None) -> str:
    msgid = message if isinstance(message, str) else message[0]
    return f"{context}\x04{msgid}" if context else msgid


def _read(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as po:
        return read_po(po, locale=language)


def placeholders(text: str) -> set[str]:
    """The named and positional placeholders of a message (`%(name)s` → `name`)."""
    found = set()
    for match in _PLACEHOLDER.finditer(text):
        if match.group(1):
            found.add(f"%({match.group(1)})")
        elif match.group(0).startswith("{"):
            found.add(f"{{{match.group(2)}}}")
        else:
            found.add(match.group(0))
    return found


def check_catalogues(domain: Domain) -> list[Problem]:
    problems: list[Problem] = []
    fresh = extract(domain)
    rel_pot = _rel(domain.template)
    if not domain.template.exists():
        return [Problem(rel_pot, "missing: run scripts/i18n.sh")]
    pot = _read(domain.template)
    pot_keys = {_key(m.id, m.context) for m in pot if m.id}
    for key in sorted(set(fresh) - pot_keys):
        problems.append(Problem(rel_pot, f"stale, lacks {_show(key)}: run scripts/i18n.sh"))
    for key in sorted(pot_keys - set(fresh)):
        problems.append(Problem(rel_pot, f"stale, still has {_show(key)}: run scripts/i18n.sh"))
    wanted = set(fresh) | pot_keys
    for language in SHIPPED:
        if language == DEFAULT_LANGUAGE:
            continue
        path = domain.catalogue(language)
        rel = _rel(path)
        if not path.exists():
            problems.append(Problem(rel, "missing: run scripts/i18n.sh and translate it"))
            continue
        catalog = _read(path, language)
        entries = {_key(m.id, m.context): m for m in catalog if m.id}
        for key in sorted(wanted):
            entry = entries.get(key)
            if entry is None:
                problems.append(Problem(rel, f"no entry for {_show(key)}"))
                continue
            problems.extend(_entry_problems(rel, key, entry, catalog.num_plurals))
    return problems


def _entry_problems(rel: str, key: str, entry: object, num_plurals: int) -> list[Problem]:
    from babel.messages.catalog import Message

    assert isinstance(entry, Message)
    problems = []
    if entry.fuzzy:
        problems.append(Problem(rel, f"fuzzy translation of {_show(key)}"))
    if isinstance(entry.id, str):
        strings = [entry.string] if isinstance(entry.string, str) else list(entry.string or [])
        sources = placeholders(entry.id)
        if not strings or not all(strings):
            problems.append(Problem(rel, f"untranslated {_show(key)}"))
            return problems
        for text in strings:
            if placeholders(text) != sources:
                problems.append(Problem(rel, f"placeholders differ in {_show(key)}: {text!r}"))
        return problems
    singular, plural = entry.id[0], entry.id[1]
    forms = list(entry.string) if isinstance(entry.string, (list, tuple)) else [entry.string]
    if len(forms) != num_plurals or not all(forms):
        problems.append(
            Problem(rel, f"{_show(key)} needs {num_plurals} plural forms, all translated")
        )
        return problems
    allowed = placeholders(singular) | placeholders(plural)
    used: set[str] = set()
    for form in forms:
        found = placeholders(form or "")
        used |= found
        if not found <= allowed:
            problems.append(Problem(rel, f"placeholders differ in {_show(key)}: {form!r}"))
    # A form for exactly one may say "one" in words; together the forms keep every value.
    if used != allowed:
        problems.append(
            Problem(rel, f"placeholders lost in {_show(key)}: {sorted(allowed - used)}")
        )
    return problems


def _show(key: str) -> str:
    context, _sep, msgid = key.rpartition("\x04")
    shown = msgid if len(msgid) <= 70 else msgid[:67] + "..."
    return f"[{context}] {shown!r}" if context else repr(shown)


class _TextFinder(HTMLParser):
    """Collects user-facing text of an HTML template whose Jinja parts were blanked."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []
        self._raw_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._raw_depth += 1
        values = dict(attrs)
        for name, value in attrs:
            if value is None:
                continue
            if name in CHECKED_ATTRIBUTES or (
                name == "value"
                and (
                    tag == "button" or (tag == "input" and values.get("type") in BUTTON_INPUT_TYPES)
                )
            ):
                self._consider(f'{name}="{value}"', value)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("script", "style"):
            self._raw_depth -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._raw_depth:
            self._raw_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self._raw_depth:
            self._consider(data.strip(), data)

    def _consider(self, shown: str, text: str) -> None:
        if is_user_facing(text):
            self.found.append((self.getpos()[0], shown.replace(_HOLE, "{{…}}")))


def is_user_facing(text: str) -> bool:
    """True when `text` holds a word other than the brand (numbers and punctuation are fine)."""
    for word in re.split(r"[\s" + _HOLE + r"]+", text):
        if word.strip(".,:;!?()[]–—-'\"") in ALLOWED_WORDS:
            continue
        if "/" in word or "=" in word:  # an address or a query (a block filling an href)
            continue
        if any(unicodedata.category(ch).startswith("L") for ch in word):
            return True
    return False


def untranslated_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every user-facing literal of a template outside `{% trans %}`/`_()`."""

    def blank(match: re.Match[str]) -> str:
        # Keep the line count, so the line numbers point at the source.
        newlines = "\n" * match.group(0).count("\n")
        hole = _HOLE if match.group(0).startswith("{{") else ""
        return hole + newlines

    finder = _TextFinder()
    finder.feed(_JINJA.sub(blank, source))
    finder.close()
    return finder.found


def check_templates(domain: Domain) -> list[Problem]:
    problems = []
    for path in domain.files("jinja2"):
        if path.suffix != ".html":
            continue
        rel = _rel(path)
        for line, text in untranslated_literals(path.read_text(encoding="utf-8")):
            problems.append(Problem(f"{rel}:{line}", f"untranslated text {text!r}"))
    return problems


def run() -> list[Problem]:
    problems: list[Problem] = []
    for domain in domains():
        problems.extend(check_templates(domain))
        problems.extend(check_catalogues(domain))
    return problems


def main() -> int:
    found = domains()
    problems = run()
    for problem in problems:
        print(problem, file=sys.stderr)
    names = ", ".join(d.name for d in found) or "none"
    if problems:
        print(f"{len(problems)} problem(s) in the catalogues (domains: {names})", file=sys.stderr)
        return 1
    print(f"catalogues complete (domains: {names}; languages: {', '.join(SHIPPED)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
