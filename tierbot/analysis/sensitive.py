"""Security-sensitive paths and added code: what a reviewer should look at with the best model.

Two kinds of evidence feed the risk model:

* paths: authentication, crypto, security, payments, permissions, migrations, CI workflows,
  container and infrastructure files, dependency manifests (built-in rules below plus the
  gitignore-style globs of `routing.sensitive_paths`);
* added lines: eval/exec, shell and subprocess calls, raw SQL, unsafe deserialization, crypto
  primitives, permission checks and concurrency primitives.

Everything here is pure text matching, so it costs microseconds per file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from tierbot.paths import matches

# Path rules: (category, regex over the lower-cased repo-relative path).  A name counts when it is a
# whole word of the path (separated by / . _ - or the ends), so "author.py" is not "auth".
_W = r"(?:^|[/._-])"
_E = r"(?:$|[/._-])"


def _words(*names: str) -> str:
    return _W + "(?:" + "|".join(names) + ")" + _E


PATH_RULES: tuple[tuple[str, str], ...] = (
    (
        "auth",
        _words(
            "auth",
            "authn",
            "authz",
            "authentication",
            "oauth2?",
            "login",
            "logout",
            "sessions?",
            "passwords?",
            "passwd",
            "credentials?",
            "jwt",
            "saml",
            "sso",
            "openid",
            "oidc",
            "token",  # not "tokens": in most code today that means LLM tokens
        ),
    ),
    (
        "crypto",
        _words(
            "crypto",
            "cryptography",
            "crypt",
            "cipher",
            "ciphers",
            "encrypt(?:ion)?",
            "decrypt",
            "hmac",
            "tls",
            "ssl",
            "x509",
            "certs?",
            "certificates?",
            "keystore",
            "kms",
            "secrets?",
            "signing",
            "signatures?",
        ),
    ),
    (
        "security",
        _words(
            "security",
            "secure",
            "sanitize[rs]?",
            "sanitizers?",
            "csrf",
            "xss",
            "cors",
            "firewall",
            "sandbox",
            "acl",
            "acls",
        ),
    ),
    (
        "payments",
        _words(
            "payments?",
            "billing",
            "invoices?",
            "checkout",
            "stripe",
            "paypal",
            "refunds?",
            "wallets?",
        ),
    ),
    (
        "permissions",
        _words(
            "permissions?",
            "perms",
            "rbac",
            "roles?",
            "polic(?:y|ies)",
            "privileges?",
            "access[_-]?control",
            "admin",
        ),
    ),
    (
        "migrations",
        r"(?:^|/)(?:migrations?|migrate|alembic)/|(?:^|/)schema\.(?:sql|rb|prisma)$"
        r"|\.sql$",
    ),
    (
        "ci",
        r"^\.github/workflows/|^\.github/actions/|(?:^|/)\.gitlab-ci\.ya?ml$|^\.circleci/"
        r"|(?:^|/)jenkinsfile$|(?:^|/)azure-pipelines\.ya?ml$|(?:^|/)\.travis\.ya?ml$"
        r"|^\.buildkite/",
    ),
    (
        "docker",
        r"(?:^|/)(?:docker|container)file(?:\.[^/]*)?$|(?:^|/)[^/]*\.dockerfile$"
        r"|(?:^|/)(?:docker-)?compose[^/]*\.ya?ml$",
    ),
    (
        "infrastructure",
        r"\.(?:tf|tfvars|hcl)$|(?:^|/)(?:terraform|helm|k8s|kubernetes|charts"
        r"|ansible|deploy|deployment|infra|infrastructure)/"
        r"|(?:^|/)serverless\.ya?ml$|(?:^|/)nginx[^/]*\.conf$",
    ),
    (
        "dependencies",
        r"(?:^|/)(?:requirements[^/]*\.(?:txt|in)|pyproject\.toml|setup\.py|setup\.cfg"
        r"|pipfile|package\.json|go\.mod|cargo\.toml|gemfile|[^/]*\.gemspec|pom\.xml"
        r"|build\.gradle(?:\.kts)?|composer\.json|[^/]*\.csproj|mix\.exs)$",
    ),
)

# Added-code rules: (category, regex over one added line).  Case matters where it helps precision
# (raw SQL keywords are upper case in practice).
CODE_RULES: tuple[tuple[str, str], ...] = (
    ("eval", r"(?<![\w.])(?:eval|exec)\s*\(|\bnew\s+Function\s*\(|\bcompile\s*\([^)]*['\"]exec"),
    (
        "shell",
        r"\bsubprocess\.|\bos\.(?:system|popen|exec\w*|spawn\w*)\s*\(|shell\s*=\s*True"
        r"|\bexec\.Command(?:Context)?\s*\(|\bchild_process\b|Runtime\.getRuntime\(\)\.exec"
        r"|\bpopen\s*\(|(?<![\w.])system\s*\(",
    ),
    (
        "sql",
        r"\b(?:SELECT\s+.+\s+FROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|DROP\s+TABLE"
        r"|ALTER\s+TABLE|CREATE\s+TABLE)\b|\.execute(?:many)?\s*\(|\bcursor\s*\(|\.raw\s*\("
        r"|\bdb\.(?:Query|Exec|QueryRow)\w*\s*\(",
    ),
    (
        "deserialization",
        r"\b(?:pickle|cPickle|dill|marshal|shelve)\.(?:loads?|Unpickler|open)\b"
        r"|\byaml\.(?:load|unsafe_load|full_load)\s*\((?![^)]*SafeLoader)"
        r"|\bjsonpickle\b|\bunserialize\s*\(|\bObjectInputStream\b"
        r"|\bBinaryFormatter\b|\bgob\.NewDecoder\b",
    ),
    (
        "crypto",
        r"\bhashlib\.|\bhmac\.|\b(?:md5|sha1|MD5|SHA1)\b|\bCipher\b|\bAES\b|\bRSA\b"
        r"|\"crypto/|\bbcrypt\b|\bscrypt\b|\bpbkdf2\b|\bssl\.|\btls\.Config\b"
        r"|verify\s*=\s*False|InsecureSkipVerify|\brandom\.(?:random|randint)\s*\("
        r"|\bmath/rand\b|\bsecrets\.|\bjwt\.|\bnonce\b",
    ),
    (
        "permissions",
        r"\bchmod\b|\bchown\b|\bsetuid\b|\bsetgid\b|\bumask\b|\b0o?7[0-7]7\b"
        r"|\bis_(?:admin|superuser|staff)\b|\bhas_perm\w*\b|\bpermission\w*\b"
        r"|\bauthori[sz]e\w*\b|\bauthenticat\w*\b|\blogin_required\b"
        r"|\bcheck_password\b|\baccess_control\b",
    ),
    (
        "concurrency",
        r"\bthreading\.|\bThread\s*\(|\bR?Lock\s*\(|\bSemaphore\s*\(|\bCondition\s*\("
        r"|\basyncio\.(?:Lock|Event|gather|create_task|wait|Queue|Semaphore)\b"
        r"|\bmultiprocessing\b|\bconcurrent\.futures\b|\bgo\s+func\b"
        r"|^\s*go\s+[\w.]+\(|\bsync\.(?:Mutex|RWMutex|WaitGroup|Once|Map|Cond)\b"
        r"|\batomic\.\w+|\bchan\s+\w|<-\s*\w|\bsynchronized\b|\bvolatile\b"
        r"|\bpthread_\w+|\bstd::(?:thread|mutex|atomic)\b|\bArc<Mutex",
    ),
)

# Lines that are only a comment say nothing about behaviour.
_COMMENT_RE = re.compile(r"^\s*(?:#|//|/\*|\*|--|;)")

_PATH_RES = tuple((cat, re.compile(rx)) for cat, rx in PATH_RULES)
_CODE_RES = tuple((cat, re.compile(rx)) for cat, rx in CODE_RULES)

# Substrings that every match of a rule contains: a line without any of them skips that rule's
# regex, which keeps a 25,000-line change under a few tens of milliseconds.
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "eval": ("eval", "exec", "Function", "compile"),
    "shell": (
        "subprocess",
        "os.",
        "shell",
        "exec.Command",
        "child_process",
        "Runtime",
        "popen",
        "system",
    ),
    "sql": (
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "DROP",
        "ALTER",
        "CREATE",
        ".execute",
        "cursor",
        ".raw",
        "db.",
    ),
    "deserialization": (
        "pickle",
        "Pickle",
        "dill.",
        "marshal.",
        "shelve.",
        "yaml.",
        "jsonpickle",
        "unserialize",
        "ObjectInputStream",
        "BinaryFormatter",
        "gob.",
    ),
    "crypto": (
        "hashlib",
        "hmac",
        "md5",
        "sha1",
        "MD5",
        "SHA1",
        "Cipher",
        "AES",
        "RSA",
        "crypto/",
        "bcrypt",
        "scrypt",
        "pbkdf2",
        "ssl.",
        "tls.",
        "verify",
        "InsecureSkipVerify",
        "random.",
        "math/rand",
        "secrets.",
        "jwt.",
        "nonce",
    ),
    "permissions": (
        "chmod",
        "chown",
        "setuid",
        "setgid",
        "umask",
        "07",
        "0o7",
        "is_admin",
        "is_superuser",
        "is_staff",
        "has_perm",
        "permission",
        "authori",
        "authentic",
        "login_required",
        "check_password",
        "access_control",
    ),
    "concurrency": (
        "thread",
        "Thread",
        "Lock",
        "Semaphore",
        "Condition",
        "asyncio.",
        "multiprocessing",
        "concurrent.futures",
        "go ",
        "go\t",
        "sync.",
        "atomic.",
        "chan",
        "<-",
        "synchronized",
        "volatile",
        "pthread_",
        "std::",
        "Arc<Mutex",
    ),
}
_CODE_CHECKS = tuple((cat, rx, _TRIGGERS[cat]) for cat, rx in _CODE_RES)
# Sensitive-code evidence saturates quickly; past this many added lines a change is big anyway.
MAX_SCANNED_LINES = 20000


class CodeHit(NamedTuple):
    category: str
    line: int  # new-side line number


def path_categories(path: str, extra_globs: Sequence[str] = ()) -> tuple[str, ...]:
    """The sensitive categories of one path ("configured" for a `routing.sensitive_paths` hit)."""
    low = path.lower()
    cats = [cat for cat, rx in _PATH_RES if rx.search(low)]
    if matches(path, extra_globs):
        cats.append("configured")
    return tuple(cats)


def code_hits(added_lines: Iterable[tuple[int, str]]) -> tuple[CodeHit, ...]:
    """Sensitive constructs in added lines: at most one hit per category per line."""
    lines = [
        (n, t)
        for n, t in list(added_lines)[:MAX_SCANNED_LINES]
        if len(t) <= 400 and not _COMMENT_RE.match(t)
    ]  # no minified blobs or comments
    blob = "\n".join(t for _, t in lines)
    # Only the rules whose trigger words occur somewhere in the added text look at lines.
    checks = [
        (cat, rx, present)
        for cat, rx, triggers in _CODE_CHECKS
        if (present := tuple(t for t in triggers if t in blob))
    ]
    hits: list[CodeHit] = []
    if not checks:
        return ()
    for number, text in lines:
        for cat, rx, present in checks:
            if any(t in text for t in present) and rx.search(text):
                hits.append(CodeHit(cat, number))
    return tuple(hits)
