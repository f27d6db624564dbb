"""Text tierbot prints: untrusted text in it stays data for whatever reads the output.

A GitHub Actions runner reads every line a step prints and acts on workflow commands in it: a line
that starts (after blanks) with `::` (`::set-output name=blocking::false`, `::stop-commands::x`),
and the older `##[command ...]` form ANYWHERE in a line.  File names, commit subjects and model
text reach our output, so before anything is printed:
- a lone carriage return (the runner starts a new line there) is shown as `\\r`;
- a line that starts with `::` gets a backslash in front, unless it is one of the workflow commands
  tierbot emits on purpose (the `github` format's annotations);
- `##[` becomes `##\\[` (`#\\u0023[` in JSON, which decodes to the same string);
- credentials in URLs are masked (`http://user:pass@proxy` -> `http://***@proxy`).
Names with control characters are shown with `paths.printable` by the reporters themselves.
"""

from __future__ import annotations

from tierbot.secretscan import mask_url_credentials

# Formats whose output is JSON: escapes must keep it valid and decode to the same data.
JSON_FORMATS = ("json", "sarif")
# The workflow commands tierbot itself emits (the `github` format).
OWN_COMMANDS = ("::error ", "::warning ", "::notice ")


def guard(text: str, fmt: str = "text") -> str:
    """`text` of format `fmt`, safe to print where a CI runner reads it (see the docstring)."""
    text = mask_url_credentials(text)
    if fmt in JSON_FORMATS:
        return text.replace("##[", "#\\u0023[")
    if "##[" in text:
        text = text.replace("##[", "##\\[")
    # The runner splits lines at a lone CR too: make it visible instead of a line break.
    text = text.replace("\r\n", "\n").replace("\r", "\\r")
    if "::" not in text:
        return text
    own = OWN_COMMANDS if fmt == "github" else ()
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.lstrip().startswith("::") and not (own and line.startswith(own)):
            lines[i] = "\\" + line
    return "\n".join(lines)
