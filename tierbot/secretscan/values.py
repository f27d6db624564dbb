"""Judging a candidate value: random enough to be a key, or a name, a template or a placeholder?

Two questions, kept apart:
- `looks_random`: does the value have the shape of a credential at all (length, letters and digits,
  entropy, no identifier shape)?  If not, it is not reported and not redacted.
- `is_weak`: a credential-shaped value that announces itself as made up (a placeholder word, a
  template, percent-encoding, a counting run like `123456`, a public documentation sample).  It is
  still redacted before sending, but reported at `low` (visible, never blocking).
Everything here is linear in the value's length.
"""

from __future__ import annotations

import math
import re
from collections import Counter

# Words that make a value a stand-in rather than a credential.
PLACEHOLDER_WORDS = (
    "example",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "your_",
    "your-",
    "yourkey",
    "dummy",
    "redacted",
    "replace",
    "sample",
    "fake",
    "mock",
    "notreal",
    "not_a_real",
    "not-a-real",
    "insert",
    "todo",
    "fixme",
    "xxxx",
    "****",
    "...",
    "…",
    "<",
    ">",
    "${",
    "{{",
    "%(",
    "%s",
    "$(",
)
# A whole value that is a lookup or a template, never a literal secret.
_TEMPLATE = re.compile(
    r"^(?:\$\{[^}]{1,200}\}|\$[A-Za-z_][A-Za-z0-9_]{0,100}|\{\{[^}]{1,200}\}\}|<[^>]{1,200}>"
    r"|%\([A-Za-z_]{1,100}\)s|\{[A-Za-z_][A-Za-z0-9_.]{0,100}\}|@[A-Za-z_][A-Za-z0-9_]{0,100}@)$"
)
_LOOKUPS = ("process.env", "os.environ", "getenv", "env(", "secrets.", "vars.", "env.")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
# "test" as a word of the value (`test_api_key_...`, `my-test-token`), not inside one ("latest").
_TEST_WORD = re.compile(r"(?:^|[^a-z])test")
_SEPARATORS = re.compile(r"[/_.:,;@-]+")
_DOTTED_IDENT = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$")
_CONST_IDENT = re.compile(r"^[A-Z][A-Z0-9_]*$")

# Values published in vendors' documentation (matched exactly, after stripping quotes).
PUBLIC_SAMPLES = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        # jwt.io's default token
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwia"
        "WF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        # Stripe's documentation key
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        # Azurite (the Azure storage emulator) key, published by Microsoft
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    }
)
# The payload of jwt.io-style samples, base64 of `"name":"John Doe"` at the usual offsets.
_JWT_SAMPLE_MARKERS = ("IkpvaG4gRG9lI", "Sm9obiBEb2", "pvaG4gRG9l")


_REPEATED = re.compile(r"(.)\1{4}")


def _trie(words: list[str]) -> str:
    """An alternation of `words` as a prefix tree, which the regex engine walks without retrying
    every word at every position."""
    tree: dict[str, dict] = {}  # type: ignore[type-arg]
    for word in words:
        node = tree
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:  # type: ignore[type-arg]
        alts = [re.escape(ch) + emit(sub) if ch else "" for ch, sub in sorted(node.items())]
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(tree)


# Six characters counting up or down: `123456`, `abcdef`, `fedcba` (typed, never drawn at random);
# matched on the lowercased value.
_COUNTING = re.compile(
    _trie(
        sorted(
            seq[i : i + 6]
            for alphabet in ("0123456789", "abcdefghijklmnopqrstuvwxyz")
            for seq in (alphabet, alphabet[::-1])
            for i in range(len(seq) - 5)
        )
    )
)
# Each character -> its class: Upper, Lower, Digit, Separator; anything else is kept as it is.
CLASSES = str.maketrans(
    {
        **{c: "U" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
        **{c: "L" for c in "abcdefghijklmnopqrstuvwxyz"},
        **{c: "D" for c in "0123456789"},
        **{c: "S" for c in "/_.:,;@-"},
    }
)
# c * log2(c) for the counts a value up to 4096 characters can have.
_C_LOG_C = [0.0] + [c * math.log2(c) for c in range(1, 4097)]


def entropy(value: str) -> float:
    """Shannon entropy in bits per character; random base64 is near 6, English nearer 3."""
    n = len(value)
    if not n:
        return 0.0
    if n > 4096:
        return -sum(c / n * math.log2(c / n) for c in Counter(value).values())
    # H = log2(n) - sum(c log2 c) / n, with the sum looked up rather than computed.
    return math.log2(n) - sum(map(_C_LOG_C.__getitem__, Counter(value).values())) / n


def counting_run(value: str) -> bool:
    """A run like `123456`, `abcdef` or `654321`: typed by a person, never drawn at random."""
    return _COUNTING.search(value.lower()) is not None


def repeated(value: str) -> bool:
    """A run of one character (`xxxxx`, `00000`): a mask or filler."""
    return _REPEATED.search(value) is not None


def is_template(value: str) -> bool:
    lowered = value.lower()
    return bool(_TEMPLATE.match(value)) or any(word in lowered for word in _LOOKUPS)


def is_public_sample(value: str) -> bool:
    if value in PUBLIC_SAMPLES:
        return True
    if value.startswith("eyJ") and any(m in value for m in _JWT_SAMPLE_MARKERS):
        return True
    return "EXAMPLE" in value  # the AWS documentation's example keys and their variants


def is_weak(value: str) -> bool:
    """A credential-shaped value that announces itself as made up (see the module docstring)."""
    lowered = value.lower()
    return (
        any(word in lowered for word in PLACEHOLDER_WORDS)
        or _TEST_WORD.search(lowered) is not None
        or ("%" in value and _PERCENT.search(value) is not None)
        or _COUNTING.search(lowered) is not None
        or _REPEATED.search(value) is not None
        or is_public_sample(value)
    )


# Runs of one character class (anything but Upper, Lower, Digit counts as one class).
CLASS_RUNS = re.compile(r"U+|L+|D+|[^ULD]+")


def identifier(value: str) -> bool:
    """`settings.SECRET_KEY`, `self.token`, `API_TOKEN_V2`: a name, not a value.  A token with a
    dot in it (`B15oyRSk.QyGetLYw...`) has the same shape, but more digits and its letters and
    digits change class about every other character."""
    if not (_DOTTED_IDENT.match(value) or _CONST_IDENT.match(value)):
        return False
    classes = value.translate(CLASSES)
    return classes.count("D") <= 2 and len(CLASS_RUNS.findall(classes)) < 0.45 * len(value)


def looks_random(value: str, *, bare: bool = False) -> bool:
    """Whether `value` has a credential's shape: letters and digits mixed in a long stretch,
    enough distinct characters and entropy, and not an identifier, a path, a template or a
    lookup.  `bare` (an unquoted value) asks for a little more."""
    if " " in value or is_template(value) or value.startswith("$"):
        return False  # keys have no spaces: "Mozilla/5.0 (github.com/psf/requests)" is text
    if identifier(value):
        return False
    if len(set(value)) < 6:
        return False
    classes = value.translate(CLASSES)
    digits = classes.count("D")
    letters = classes.count("U") + classes.count("L")
    # Real keys and passwords mix letters and digits; identifiers and prose mostly do not.
    if digits < (2 if bare else 1) or letters < 4:
        return False
    # Paths and names ("emails/password_reset_v2.html") are words between separators; a key
    # has at least one long stretch that mixes letters and digits.
    if not any(
        len(part) >= 8 and "D" in part and ("U" in part or "L" in part)
        for part in classes.split("S")
    ):
        return False
    return entropy(value) >= (3.5 if bare else 3.0)


def looks_like_password(value: str) -> bool:
    """A value assigned to a password-like name: a literal of 8+ characters that is not a
    sentence, a path, a URL, an identifier or a template (pass phrases may be words)."""
    if len(value) < 8 or len(value) > 200 or is_template(value) or value.startswith("$"):
        return False
    if identifier(value):
        return False
    lowered = value.lower()
    if any(w in lowered for w in ("password", "passphrase", "passwd", "://", "please", "enter ")):
        return False  # prompts, labels and URLs about passwords
    words = value.split()
    if len(words) > 1:
        # A pass phrase is a few lowercase words; a sentence has capitals or punctuation.
        return 3 <= len(words) <= 8 and all(w.isalpha() and w.islower() for w in words)
    if "/" in value or "\\" in value or value.endswith((".html", ".txt", ".json", ".py")):
        return False
    if any(c in value for c in "()<>[]{}") or value.endswith((",", ";")):
        return False  # code (`Option<String>,`, `get_password()`), not a literal
    # A password mixes letters with digits or symbols; a lone word is a name or a label.
    has_letter = any(c.isalpha() for c in value)
    has_other = any(c.isdigit() or not (c.isalnum() or c in "_-.") for c in value)
    return has_letter and has_other and len(set(value)) >= 5
