"""`--format sarif`: SARIF 2.1.0 as GitHub code scanning accepts it.

One run, one rule per finding category, relative percent-encoded URIs against %SRCROOT%, and a
partial fingerprint so that code scanning tracks an alert across pushes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import tierbot
from tierbot.records import Finding, ReviewResult

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://github.com/tierbot/tierbot"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
# GitHub reads a CVSS-like score from rules tagged "security"; only leaked secrets warrant it.
_SECRET_CATEGORIES = (
    "secret",
    "secrets",
    "private-key",
    "private_key",
    "credential",
    "credentials",
)
_SECURITY_SEVERITY = {
    "critical": "9.5",
    "high": "8.0",
    "medium": "5.5",
    "low": "3.0",
    "info": "1.0",
}


def rule_id(category: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", category.lower()).strip("-")
    return slug or "general"


def _is_secret(category: str) -> bool:
    return rule_id(category) in {rule_id(c) for c in _SECRET_CATEGORIES}


def artifact_uri(path: str) -> str:
    """A relative URI reference: spaces, non-ASCII, '%', '#', '?' and ':' are percent-encoded."""
    return quote(path.replace("\\", "/").lstrip("/"), safe="/", errors="surrogateescape")


def _result(f: Finding, index: int) -> dict[str, Any]:
    title, message = f.title.strip(), f.message.strip()
    text = f"{title}: {message}" if title and message else (title or message or f.category)
    location: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": {"uri": artifact_uri(f.path), "uriBaseId": "%SRCROOT%"},
        }
    }
    if f.line is not None and f.line >= 1:
        end = f.end_line if f.end_line is not None and f.end_line >= f.line else f.line
        location["physicalLocation"]["region"] = {"startLine": f.line, "endLine": end}
    properties: dict[str, Any] = {"tierbot-severity": f.severity, "source": f.source}
    if _is_secret(f.category):
        properties["security-severity"] = _SECURITY_SEVERITY[f.severity]
    result: dict[str, Any] = {
        "ruleId": rule_id(f.category),
        "ruleIndex": index,
        "level": _LEVEL[f.severity],
        "message": {"text": text},
        "locations": [location],
        "properties": properties,
    }
    if f.fingerprint:
        result["partialFingerprints"] = {"tierbot/v1": f.fingerprint}
    return result


def to_sarif(result: ReviewResult) -> dict[str, Any]:
    return document(sarif_run([(f, {}) for f in result.findings], result.status, result.notes))


def document(run: dict[str, Any]) -> dict[str, Any]:
    """A SARIF log holding one run."""
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def sarif_run(
    findings: Sequence[tuple[Finding, dict[str, Any]]], status: str, notes: Sequence[str]
) -> dict[str, Any]:
    """One run of tierbot over `findings`, each with properties of its own (an audit's commit)."""
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for f, extra in findings:
        rid = rule_id(f.category)
        if rid not in index:
            index[rid] = len(rules)
            rule: dict[str, Any] = {
                "id": rid,
                "name": "".join(part.capitalize() for part in rid.split("-")),
                "shortDescription": {"text": f"tierbot: {f.category or rid}"},
                "properties": {"tags": ["tierbot"]},
            }
            if _is_secret(f.category):
                rule["properties"] = {"tags": ["tierbot", "security"]}
            rules.append(rule)
        result = _result(f, index[rid])
        result["properties"].update(extra)
        results.append(result)
    # GitHub takes the highest security-severity of a rule's results from the rule itself.
    for rid, i in index.items():
        sevs = [
            r["properties"]["security-severity"]
            for r in results
            if r["ruleId"] == rid and "security-severity" in r["properties"]
        ]
        if sevs:
            rules[i]["properties"]["security-severity"] = max(sevs, key=float)

    invocation: dict[str, Any] = {"executionSuccessful": status != "failed"}
    if notes:
        invocation["toolExecutionNotifications"] = [
            {"level": "note", "message": {"text": note}} for note in notes
        ]
    return {
        "tool": {
            "driver": {
                "name": "tierbot",
                "informationUri": INFORMATION_URI,
                "version": tierbot.__version__,
                "semanticVersion": tierbot.__version__,
                "rules": rules,
            }
        },
        "invocations": [invocation],
        "results": results,
        "properties": {"tierbot-status": status},
    }


def render(result: ReviewResult) -> str:
    text = json.dumps(to_sarif(result), indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # non-UTF-8 file names in notes: keep the output writable
        text = json.dumps(to_sarif(result), indent=2, ensure_ascii=True)
    return text + "\n"
