"""Linear time of the secret detectors (issue 10): 1 MB of adversarial input per detector, each
under 0.2 s of CPU time.

Each input is built to hit what makes a regex engine slow: a pattern's prefix repeated with no
valid body, long runs of a pattern's body characters, markers that open and never close, quotes
that never pair, names that never get a value, and base64 that decodes to text.  Every detector
runs on every input (a detector must be fast on all of them, not only on its own).  Inputs where
every value is a different real-looking secret are timed too, per finding: their cost grows with
the number of findings (linearly), not with the scan.

Run: python bench/secret_detectors.py   (one RESULT line per detector; exit 1 if one is too slow)
"""

from __future__ import annotations

import base64
import random
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tierbot.secretscan import engine, find_secrets, redact

MB = 1 << 20
LIMIT_S = 0.2


def fill(unit: str) -> str:
    return (unit * (MB // len(unit) + 1))[:MB]


def distinct(template: str) -> str:
    """1 MB of `template` filled with a different random value each time (no two alike, so no
    judgement can be reused)."""
    rng = random.Random(1)
    alphabet = string.ascii_letters + string.digits
    parts: list[str] = []
    size = 0
    while size < MB:
        part = template.format("".join(rng.choice(alphabet) for _ in range(24)))
        parts.append(part)
        size += len(part)
    return "".join(parts)[:MB]


def inputs() -> dict[str, str]:
    b64_text = base64.b64encode(b"user:password plain text here ").decode()
    return {
        # private keys: the quadratic case, and variants
        "repeated BEGIN lines": fill("-----BEGIN RSA PRIVATE KEY-----\n"),
        "BEGIN markers on one line": fill("-----BEGIN RSA PRIVATE KEY-----"),
        "BEGIN, body, no END": fill("-----BEGIN EC PRIVATE KEY-----\n" + "QUJD" * 16 + "\n"),
        "BEGIN/END around code": fill(
            "-----BEGIN PRIVATE KEY-----\nx = 1\n-----END PRIVATE KEY-----\n"
        ),
        # provider prefixes with no valid body, and endless bodies
        "provider prefixes": fill("ghp_ sk- AKIA eyJ xoxb- AIza glpat- hf_ npm_ dckr_pat_ SG. "),
        "endless token body": "sk-" + fill("a1B2"),
        "jwt-like dots": fill("eyJabcdefghij."),
        # names, assignments, headers, URLs
        "secret names, no values": fill("password token secret api_key "),
        "one endless name": fill("secret_token_key_"),
        "name then blanks": "password" + " " * (MB - 9) + "=",
        "assignments of short values": fill('password = "abc"\n'),
        "headers without tokens": fill("Authorization: Bearer \n"),
        "URL userinfo, no host": fill("http://user:pass"),
        "connection strings": fill(";Password=x;pwd=y&password="),
        # tokenizer
        "unpaired quotes": fill('"'),
        "literal chains": fill('"abcdefgh" + '),
        "one endless base64 run": fill("QUJDREVGR0hJSktM"),
        "base64 that decodes to text": fill(b64_text + " "),
        "nested base64": fill(base64.b64encode(b64_text.encode()).decode() + "\n"),
        "high-entropy literals": fill('"q8VpL2mZ0rT5wK9sB3nX7cJ1" '),
    }


def all_findings() -> dict[str, str]:
    """1 MB where every value is a different secret: the cost is per finding (25,000-40,000 of
    them), so it is reported per finding rather than held to the 1 MB target."""
    return {
        "distinct random literals": distinct('"{}" '),
        "distinct named secrets": distinct('api_key = "{}"\n'),
        "distinct provider tokens": distinct("ghp_{}abcdefghijkl\n"),
    }


def timed(fn: object, text: str, repeat: int = 3) -> float:
    """CPU seconds, the best of `repeat` runs (the machine is shared: wall time, or a single run,
    would measure the neighbours)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        list(fn(text))  # type: ignore[operator]
        best = min(best, time.process_time() - start)
    return best


def main() -> int:
    cases = inputs()
    failed = False
    for name, detector in engine.DETECTORS:
        worst, worst_case = 0.0, ""
        for case, text in cases.items():
            elapsed = timed(detector, text)
            if elapsed > worst:
                worst, worst_case = elapsed, case
        ok = worst < LIMIT_S
        failed |= not ok
        print(
            f"RESULT detector {name}: worst {worst:.3f} s on 1 MB ({worst_case})"
            f" [{'ok' if ok else 'FAIL'}: < {LIMIT_S} s]"
        )
    for case, text in all_findings().items():
        found = find_secrets(text)
        elapsed = timed(find_secrets, text)
        print(
            f"RESULT every value a finding, {case}: {elapsed:.3f} s for {len(found)} findings"
            f" ({1e6 * elapsed / max(len(found), 1):.1f} us each)"
        )
    # The whole engine and redaction, for scale (not a per-detector target).
    worst = max(timed(lambda t: find_secrets(t), text) for text in cases.values())
    print(f"RESULT engine (all detectors, merged): worst {worst:.3f} s on 1 MB")
    start = time.process_time()
    redact(cases["repeated BEGIN lines"])
    print(f"RESULT redact repeated BEGIN lines: {time.process_time() - start:.3f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
