#!/usr/bin/env bash
# Catalogues: for every gettext domain (one Babel config, callnow/i18n/<domain>.cfg), extract
# its messages into callnow/i18n/<domain>.pot, bring every shipped language's
# callnow/i18n/locale/<code>/LC_MESSAGES/<domain>.po up to date with it (new ones created,
# vanished ones dropped), check each .po the way msgfmt does, then run the catalogue check
# (missing or fuzzy translations, placeholders, template text left outside gettext).
#
#   ./scripts/i18n.sh           extract, update, check
#   ./scripts/i18n.sh --check   only check (nothing written)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PYBABEL=${PYBABEL:-$(dirname "$PY")/pybabel}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
LOCALES=callnow/i18n/locale
# English is the source language: it has no catalogue.
read -r -a LANGS <<<"$("$PY" -c 'from callnow.i18n import SHIPPED, DEFAULT_LANGUAGE as d; print(*(c for c in SHIPPED if c != d))')"

if [[ "${1:-}" != "--check" ]]; then
  for cfg in callnow/i18n/*.cfg; do
    domain=$(basename "$cfg" .cfg)
    pot=callnow/i18n/$domain.pot
    # No locations and no dates in the template: it changes only when the messages do.
    "$PYBABEL" -q extract -F "$cfg" -o "$pot" --no-location --omit-header --sort-output \
      --keyword=N_ .
    for lang in "${LANGS[@]}"; do
      po=$LOCALES/$lang/LC_MESSAGES/$domain.po
      if [[ -f "$po" ]]; then
        "$PYBABEL" -q update -D "$domain" -i "$pot" -d "$LOCALES" -l "$lang" \
          --no-fuzzy-matching --ignore-obsolete
      else
        "$PYBABEL" -q init -D "$domain" -i "$pot" -d "$LOCALES" -l "$lang"
      fi
    done
  done
fi

status=0
for po in "$LOCALES"/*/LC_MESSAGES/*.po; do
  if command -v msgfmt >/dev/null; then
    msgfmt --check --output-file=/dev/null "$po" || status=1
  else
    lang=$(basename "$(dirname "$(dirname "$po")")")
    "$PYBABEL" -q compile -i "$po" -o /dev/null -l "$lang" || status=1
  fi
done
"$PY" -m callnow.i18n.check || status=1
exit $status
