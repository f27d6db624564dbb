"""English for messages: a count with the right plural, a noun with the right article.

One place for the grammar every message needs, so no message reads "1 large files" or "a AWS key".
"""

from __future__ import annotations

import re

# Letters whose English name starts with a vowel sound: "an SSH key", "an AWS key", "a JWT".
_VOWEL_LETTERS = frozenset("AEFHILMNORSX")
# Abbreviations read letter by letter however they are written ("an npm token", "an HMAC").
# Other capitals are read letter by letter when short or vowel-less (AWS, SSH) and as a word
# otherwise ("a FIXME", "a TODO").
_SPELLED_OUT = frozenset({"npm", "sql", "ssh", "ssl", "xml", "mfa", "rsa", "sms", "hmac", "api"})
# Words whose first letter misleads: "a unit", "a user", "a one-line change"; "an hour".
_CONSONANT_SOUND = ("uni", "use", "usa", "usu", "uti", "ure", "eu", "one", "once")
_SILENT_H = ("hour", "honest", "honor", "honour", "heir")
_WORD = re.compile(r"[A-Za-z0-9]+")
_PLURAL_NOUNS = frozenset({"credentials", "secrets", "keys", "tokens", "passwords"})


def plural_of(noun: str) -> str:
    """`file` -> `files`, `directory` -> `directories`, `match` -> `matches`."""
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def plural(n: int, one: str, many: str | None = None) -> str:
    """`1 file`, `0 files`, `2 files`; `many` for a plural the rule gets wrong."""
    return f"{n} {one if n == 1 else many or plural_of(one)}"


def verb(n: int, one: str, many: str) -> str:
    """The verb agreeing with a count: `verb(1, "is", "are")` -> `is`."""
    return one if n == 1 else many


def with_article(phrase: str, *, capital: bool = False) -> str:
    """`AWS access key id` -> `an AWS access key id`; `GitHub token` -> `a GitHub token`;
    a plural takes none (`Docker registry credentials`)."""
    head = phrase.split(" (", 1)[0].split()
    if head and head[-1].lower() in _PLURAL_NOUNS:
        return phrase[0].upper() + phrase[1:] if capital else phrase
    article = "an" if _takes_an(phrase) else "a"
    return f"{article.capitalize() if capital else article} {phrase}"


def _takes_an(phrase: str) -> bool:
    m = _WORD.match(phrase)
    if m is None:
        return False
    word = m.group(0)
    low = word.lower()
    capitals = len(word) > 1 and word.isupper()
    if low in _SPELLED_OUT or (capitals and (len(word) <= 3 or not set(word) & set("AEIOU"))):
        an = word[0].upper() in _VOWEL_LETTERS
    elif word[0].isdigit():
        an = low.startswith(("8", "11", "18"))
    elif low.startswith(_CONSONANT_SOUND):
        an = False
    elif low.startswith(_SILENT_H):
        an = True
    else:
        an = low[0] in "aeiou"
    return an
