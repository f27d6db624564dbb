"""Precision by context: how severe a secret finding is depends on where it is.

- An exact format (provider token, private key, a config pattern) is `critical` anywhere: a real
  token in a test is still a leaked token.
- A heuristic hit (a secret-named assignment, a header, a URL or connection-string password, a
  JWT) is `critical` in code, and `low` in tests, fixtures, docs and examples, where illustrative
  credentials are the norm.
- A random-looking literal that nothing names is `medium` in code (worth a look, not worth
  blocking a commit: digests and test vectors look the same) and `low` elsewhere.
- A weak value (placeholder, template, percent-encoded, counting run, public sample) is `low`
  wherever it is: visible, never blocking.
"""

from __future__ import annotations

import re

from tierbot.paths import skip_reason_for_path
from tierbot.records import Severity
from tierbot.secretscan.kinds import SecretMatch, exact

_ILLUSTRATIVE = re.compile(
    r"(?i)(?:^|/)(?:tests?|testing|testdata|test[_-]?data|__tests__|specs?|fixtures?|__fixtures__"
    r"|mocks?|__mocks__|examples?|samples?|demos?|docs?|documentation|tutorials?|snippets"
    r"|cassettes|stubs|bench|benchmarks?)/"
    r"|(?:^|/)(?:readme|changes|changelog|history|news)[^/]*$"
    r"|\.(?:md|markdown|rst|adoc|txt|ipynb|example|sample|dist|template|tmpl)$"
    r"|(?:^|/)(?:test_[^/]*|[^/]*_tests?\.[a-z]+|conftest\.py|[^/]*Tests?\.(?:java|kt|cs)"
    r"|[^/]*_spec\.rb|[^/]*\.(?:test|spec)\.[jt]sx?)$"
)


def illustrative(path: str) -> bool:
    """Tests, fixtures, docs and examples: where credentials are usually made up."""
    return bool(_ILLUSTRATIVE.search(path) or skip_reason_for_path(path) == "docs")


def severity(match: SecretMatch, path: str) -> Severity:
    if match.weak:
        return "low"
    if exact(match.kind):
        return "critical"
    if illustrative(path):
        return "low"
    if match.kind == "high_entropy_string":
        return "medium"
    return "critical"
