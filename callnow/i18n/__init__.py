"""Languages: which ones CallNow ships, which one a person gets, and the words in each.

The source strings are English. Each shipped language has one catalogue directory,
`locale/<code>/LC_MESSAGES/`, holding a `.po` file per part of the product (`visitor.po` for the
public pages, `owner.po` for the portal and e-mails, `prompts.po` for what the owner's phone
says); at run time the files of a language are read together as one catalogue.

`formats` writes dates, zones, money and numbers per language (Babel); `check` (run as
`python -m callnow.i18n.check`) fails on an incomplete catalogue or a template literal left
outside gettext. How it all fits: docs/languages.md.
"""

from callnow.i18n.catalogues import (
    N_,
    active_language,
    gettext,
    install_in_jinja,
    ngettext,
    pgettext,
    set_language,
    use_language,
)
from callnow.i18n.languages import (
    DEFAULT_LANGUAGE,
    ENDONYMS,
    SHIPPED,
    negotiate,
    offered_languages,
    text_direction,
)

__all__ = [
    "DEFAULT_LANGUAGE",
    "ENDONYMS",
    "N_",
    "SHIPPED",
    "active_language",
    "gettext",
    "install_in_jinja",
    "negotiate",
    "ngettext",
    "offered_languages",
    "pgettext",
    "set_language",
    "text_direction",
    "use_language",
]
