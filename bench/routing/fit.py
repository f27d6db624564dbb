#!/usr/bin/env python3
"""Fit tierbot's risk weights and routing thresholds, validated leave-one-repository-out.

    python3 bench/routing/fit.py --features /tmp/feat.jsonl            # LORO report
    python3 bench/routing/fit.py --features /tmp/feat.jsonl --write    # also refit on all three
                                                                       # and rewrite risk_model.yml

Input: the output of features.py (tierbot's own feature values per commit, per-file roles and
diff characters).  Pure Python, no numpy: an L2-regularised logistic regression fitted by Newton's
method on standardised features.

Leave-one-repository-out (LORO): for each repository, the weights AND the routing thresholds are
chosen on the two others only, then the third is scored with them.  The pooled line concatenates
the three held-out results.  Routing is simulated with the benchmark's own cost model
(`metrics.py` of the shared bench, imported read-only) and tierbot's routing policy
(routing/route.py): the candidate units features.py recorded (production code apart from the
rest, packed by directory) are each scored from their own features, the floors apply (a small
unit reaches Opus only with sensitive code or a strong fix history; a CI workflow changed beyond a
pin gets at least Sonnet), units on the same tier share a call when they fit, and files with a
skip reason cost nothing.  `run.py loro` measures the same through the real CLI.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get(
    "TIERBOT_SHARED_BENCH", os.path.join(os.path.dirname(ROOT), "shared", "bench", "routing")
)
sys.path.insert(0, SHARED)
sys.path.insert(0, ROOT)

import metrics  # (the shared benchmark's cost model)

from tierbot import config
from tierbot.analysis import risk
from tierbot.routing import route as tier_route

Row = dict[str, Any]

# The features tierbot computes (risk.features), in a fixed order.
FEATURES = (
    "size.lines_added",
    "size.lines_removed",
    "spread.files",
    "spread.directories",
    "spread.entropy",
    "complexity.delta",
    "history.changes",
    "history.fixes",
    "history.authors",
    "history.last_change",
    "history.new_files",
    "history.unseen",
    "sensitive.paths",
    "sensitive.manifests",
    "sensitive.code",
    "project.fix_rate",
    "kind.no_code",
    "tests.weakened",
    "context.change",
)
# Weights that are priors, not fitted: the dev repositories have too few sensitive changes to
# estimate them, and their job is a floor for security review, not ranking these three projects.
PRIORS = {
    "sensitive.paths": 0.6,
    "sensitive.code": 0.3,
    "sensitive.manifests": 0.0,
    # Odds of a bug-inducing change proportional to the project's fix rate: a calibration
    # across projects that three repositories cannot estimate, so it is set, not fitted.
    "project.fix_rate": 1.0,
    # Tests deleted or losing assertions: 39 of the 1,200 dev commits, too rare to estimate
    # (fitted: 0.14, 0.03-0.25 across LORO folds), so a small nudge toward a closer look.
    "tests.weakened": 0.3,
    # A unit's context: log1p(lines of code the rest of its change adds), capped in risk.py.  Zero
    # for the whole change, so the commits cannot estimate it: a small nudge, bounded by the cap
    # so that a large change cannot lift every small unit to the top tier.
    "context.change": 0.05,
}
# Signs known from the defect-prediction literature (Kamei et al. 2013; Zeng et al. 2021): more
# code, more spread, more complexity and a history of fixes and churn never make a change safer,
# and a change without production code is safer.  Fitting under these signs keeps collinear
# features (lines, files, entropy) from cancelling each other out with opposite weights that no
# one could explain, and generalises better across projects.  0 = free.
SIGNS = {
    "size.lines_added": 1,
    "size.lines_removed": 1,
    "spread.files": 1,
    "spread.directories": 1,
    "spread.entropy": 1,
    "complexity.delta": 1,
    "history.changes": 1,
    "history.fixes": 1,
    "history.authors": 1,
    "history.last_change": 0,
    "history.new_files": 0,
    "history.unseen": 0,
    "kind.no_code": -1,
}
# Per-file offsets on the calibrated scale (where Sonnet starts at logit -0.62 and Opus at 0.41):
# tests, examples and configuration stay on Haiku unless the change is far past the Opus cut.
# Set, not fitted: buggy files are production code by construction of the labels, so the dev
# split cannot say how much a test file deserves.
ROLE_OFFSETS = {
    "code": 0.0,
    "test": -4.0,
    "example": -4.0,
    "other": -4.0,
    "docs": -6.0,
    "comments": -6.0,
}
SONNET_P, OPUS_P = 0.35, 0.6  # the config defaults the shipped weights are calibrated to
OPUS_TARGET, SONNET_TARGET = 0.68, 0.95  # recall the cutpoints must reach on the training repos


# --------------------------------------------------------------------------------------------
# Logistic regression (Newton, L2)
# --------------------------------------------------------------------------------------------
def solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        piv = m[c][c] or 1e-12
        for r in range(c + 1, n):
            f = m[r][c] / piv
            if f:
                for k in range(c, n + 1):
                    m[r][k] -= f * m[c][k]
    x = [0.0] * n
    for c in range(n - 1, -1, -1):
        x[c] = (m[c][n] - sum(m[c][k] * x[k] for k in range(c + 1, n))) / (m[c][c] or 1e-12)
    return x


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-max(-60.0, min(60.0, z))))


def logistic(
    xs: list[list[float]], ys: list[float], ws: list[float], l2: float, offsets: list[float]
) -> list[float]:
    """Coefficients (intercept first) of a weighted L2 logistic regression; offsets are fixed."""
    d = len(xs[0]) + 1
    beta = [0.0] * d
    for _ in range(50):
        grad = [0.0] * d
        hess = [[0.0] * d for _ in range(d)]
        for x, y, w, off in zip(xs, ys, ws, offsets, strict=True):
            row = [1.0, *x]
            p = sigmoid(sum(b * v for b, v in zip(beta, row, strict=True)) + off)
            g = w * (p - y)
            h = w * p * (1 - p)
            for i in range(d):
                grad[i] += g * row[i]
                hi = h * row[i]
                for j in range(i, d):
                    hess[i][j] += hi * row[j]
        for i in range(d):
            for j in range(i):
                hess[i][j] = hess[j][i]
            if i:
                grad[i] += l2 * beta[i]
                hess[i][i] += l2
        step = solve(hess, grad)
        beta = [b - s for b, s in zip(beta, step, strict=True)]
        if max(abs(s) for s in step) < 1e-7:
            break
    return beta


class Model:
    """Weights on the raw feature scale: logit = base + sum(w * x)."""

    def __init__(self, base: float, weights: dict[str, float]) -> None:
        self.base = base
        self.weights = weights

    def logit(self, feats: dict[str, float]) -> float:
        return self.base + sum(w * feats.get(k, 0.0) for k, w in self.weights.items())

    def scaled(self, a: float, b: float) -> Model:
        """a * (logit - b): the same ranking, thresholds moved."""
        return Model(a * (self.base - b), {k: a * w for k, w in self.weights.items()})


class Policy(NamedTuple):
    """The routing floors (routing/route.py): below `opus_min_lines` lines of code a unit reaches
    Opus only with sensitive code or paths or `opus_history_fixes` prior fixes of its files."""

    opus_min_lines: int = config.Routing().opus_min_lines
    opus_history_fixes: int = tier_route.OPUS_HISTORY_FIXES

    def may_reach_opus(self, unit: Row) -> bool:
        return (
            unit["lines"] >= self.opus_min_lines
            or unit["fixes"] >= self.opus_history_fixes
            or unit["sensitive"]
        )


SHIPPED = Policy()


def fit(
    rows: Sequence[Row], l2: float, features: Sequence[str] = FEATURES, trivial_weight: float = 0.3
) -> Model:
    """Sign-constrained fit by active set: a feature whose weight takes the wrong sign is fixed
    at zero and the rest refitted, until every weight has its expected sign."""
    active = [f for f in features if f not in PRIORS]
    while True:
        model = _fit(rows, l2, active, [f for f in features if f in PRIORS], trivial_weight)
        wrong = [f for f in active if SIGNS.get(f, 0) * model.weights[f] < 0]
        if not wrong:
            break
        worst = min(wrong, key=lambda f: SIGNS[f] * model.weights[f])
        active.remove(worst)
    for f in features:
        model.weights.setdefault(f, 0.0)
    return model


def _fit(
    rows: Sequence[Row],
    l2: float,
    free: Sequence[str],
    priors: Sequence[str],
    trivial_weight: float,
) -> Model:
    raw = [[r["features"].get(f, 0.0) for f in free] for r in rows]
    mean = [sum(col) / len(raw) for col in zip(*raw, strict=True)]
    sd = [
        max(1e-9, math.sqrt(sum((v - m) ** 2 for v in col) / len(raw)))
        for col, m in zip(zip(*raw, strict=True), mean, strict=True)
    ]
    xs = [[(v - m) / s for v, m, s in zip(x, mean, sd, strict=True)] for x in raw]
    ys = [1.0 if r["label"] == "buggy" else 0.0 for r in rows]
    ws = [trivial_weight if r["label"] == "trivial" else 1.0 for r in rows]
    offs = [sum(PRIORS[f] * r["features"].get(f, 0.0) for f in priors) for r in rows]
    beta = logistic(xs, ys, ws, l2, offs)
    weights = {f: b / s for f, b, s in zip(free, beta[1:], sd, strict=True)}
    base = beta[0] - sum(b * m / s for b, m, s in zip(beta[1:], mean, sd, strict=True))
    weights.update({f: PRIORS[f] for f in priors})
    return Model(base, weights)


# --------------------------------------------------------------------------------------------
# Calibration: the routing thresholds become the config defaults
# --------------------------------------------------------------------------------------------
def _lg(p: float) -> float:
    return math.log(p / (1 - p))


CUT_SONNET, CUT_OPUS = _lg(SONNET_P), _lg(OPUS_P)


def unit_logit(model: Model, unit: Row) -> float:
    return model.logit(unit["features"]) + unit["offset"]


def buggy_logits(row: Row, model: Model, policy: Policy) -> tuple[float, float]:
    """The logit of the commit's weakest buggy unit for the Opus cut (-inf when the floor keeps
    it below Opus) and for the Sonnet cut.  Buggy files are production code by construction of
    the labels; a buggy path tierbot does not review as code falls back to the change's logit."""
    units = [
        u
        for u in row["units"]
        if u["offset"] == 0 and any(p in u["paths"] for p in row["buggy_paths"])
    ]
    if not units:
        z = model.logit(row["features"])
        return z, z
    opus = min(unit_logit(model, u) if policy.may_reach_opus(u) else -math.inf for u in units)
    return opus, min(unit_logit(model, u) for u in units)


def choose_cutpoints(
    rows: Sequence[Row],
    model: Model,
    opus_recall: float,
    sonnet_recall: float,
    policy: Policy = SHIPPED,
) -> tuple[float, float]:
    """The highest logit cutpoints (cheapest routing) that reach the recall targets on `rows`:
    the share of buggy commits whose every buggy unit reaches the cut (for Opus, also passes the
    floor)."""
    pairs = [buggy_logits(r, model, policy) for r in rows if r["label"] == "buggy"]
    co = _cut(sorted((o for o, _ in pairs), reverse=True), opus_recall)
    cs = _cut(sorted((s for _, s in pairs), reverse=True), sonnet_recall)
    return min(cs, co - 0.05), co


def _cut(scores: list[float], recall: float) -> float:
    """The cut that `recall` of `scores` reach; when the floor keeps too many out of reach, the
    cut below every reachable one."""
    finite = [s for s in scores if math.isfinite(s)]
    k = min(max(0, math.ceil(recall * len(scores)) - 1), len(finite) - 1)
    # Midway to the next lower score keeps the cut from sitting exactly on a training commit.
    if k + 1 >= len(finite):
        return finite[k] - 1e-6
    return (finite[k] + finite[k + 1]) / 2


def fit_calibrated(
    rows: Sequence[Row],
    l2: float,
    opus_recall: float,
    sonnet_recall: float,
    features: Sequence[str] = FEATURES,
    policy: Policy = SHIPPED,
) -> Model:
    """Fit, then rescale the logit so that the chosen cutpoints land on the default thresholds
    (risk 0.35 -> Sonnet, 0.6 -> Opus): same ranking, and no config change needed to route."""
    model = fit(rows, l2, features)
    cs, co = choose_cutpoints(rows, model, opus_recall, sonnet_recall, policy)
    scale = (CUT_OPUS - CUT_SONNET) / (co - cs)
    return model.scaled(scale, co - CUT_OPUS / scale)


# --------------------------------------------------------------------------------------------
# Routing simulation with the benchmark's cost model (mirrors risk.assess + route.plan)
# --------------------------------------------------------------------------------------------
def tier_of(z: float) -> str:
    return "opus" if z >= CUT_OPUS else ("sonnet" if z >= CUT_SONNET else "haiku")


def unit_tier(model: Model, unit: Row, policy: Policy) -> str:
    tier = tier_of(unit_logit(model, unit))
    if tier == "opus" and not policy.may_reach_opus(unit):
        tier = "sonnet"
    if tier == "haiku" and unit["workflow"]:
        tier = "sonnet"
    return tier


def route(row: Row, model: Model, policy: Policy = SHIPPED) -> metrics.Routing:
    """tierbot's policy on the recorded candidate units: each at the tier of its own logit and
    the floors, same-tier units in one call when they fit (route.py also rescores a merge and
    keeps it only on the same tier); skipped files cost nothing."""
    by_tier: dict[str, list[Row]] = {}
    for u in row["units"]:
        by_tier.setdefault(unit_tier(model, u, policy), []).append(u)
    units = []
    for tier, group in by_tier.items():
        bins: list[tuple[int, list[str]]] = []
        for u in sorted(group, key=lambda u: -u["tokens"]):
            for i, (used, paths) in enumerate(bins):
                if used + u["tokens"] <= row["room"]:
                    bins[i] = (used + u["tokens"], paths + u["paths"])
                    break
            else:
                bins.append((u["tokens"], list(u["paths"])))
        units += [metrics.Unit(tier, tuple(paths)) for _, paths in bins]
    skips = {f["path"]: f["skip"] for f in row["files"] if f["skip"]}
    top = metrics.max_tier([u.tier for u in units] or ["skip"])
    return metrics.Routing(
        tier=top, risk=model.logit(row["features"]), units=tuple(units), skip_reasons=skips
    )


def evaluate(rows: Sequence[Row], model: Model, policy: Policy = SHIPPED) -> dict[str, Any]:
    routings = [route(r, model, policy) for r in rows]
    m: dict[str, Any] = metrics.compute_metrics(list(rows), routings)
    m["la_auc"] = metrics.auc_mann_whitney(
        [float(r["la"]) for r in rows if r["label"] == "buggy"],
        [float(r["la"]) for r in rows if r["label"] == "clean"],
    )
    return m


def result_line(m: dict[str, Any]) -> str:
    keys = (
        "auc",
        "la_auc",
        "file_opus_recall",
        "file_sonnet_plus_recall",
        "unit_cost_fraction",
        "trivial_cheap",
    )
    parts = [f"{k}={m[k]:.3f}" for k in keys]
    parts.insert(2, f"auc_delta={m['auc'] - m['la_auc']:.3f}")
    return " ".join(parts)


def loro_models(
    rows: Sequence[Row],
    l2: float,
    opus_recall: float,
    sonnet_recall: float,
    features: Sequence[str] = FEATURES,
    policy: Policy = SHIPPED,
) -> dict[str, Model]:
    """For each repository, the calibrated model fitted on the others."""
    return {
        repo: fit_calibrated(
            [r for r in rows if r["repo"] != repo],
            l2,
            opus_recall,
            sonnet_recall,
            features,
            policy,
        )
        for repo in sorted({r["repo"] for r in rows})
    }


def loro(
    rows: Sequence[Row],
    l2: float,
    opus_recall: float,
    sonnet_recall: float,
    features: Sequence[str] = FEATURES,
    say: Callable[[str], None] = print,
    policy: Policy = SHIPPED,
) -> dict[str, Any]:
    held_rows: list[Row] = []
    routings: list[metrics.Routing] = []
    for repo, model in loro_models(rows, l2, opus_recall, sonnet_recall, features, policy).items():
        test = [r for r in rows if r["repo"] == repo]
        say(f"held-out {repo:20s} {result_line(evaluate(test, model, policy))}")
        held_rows += test
        routings += [route(r, model, policy) for r in test]
    m: dict[str, Any] = metrics.compute_metrics(held_rows, routings)
    m["la_auc"] = metrics.auc_mann_whitney(
        [float(r["la"]) for r in held_rows if r["label"] == "buggy"],
        [float(r["la"]) for r in held_rows if r["label"] == "clean"],
    )
    say(f"pooled   {'(3 held-out repos)':20s} {result_line(m)}")
    return m


def curve(rows: Sequence[Row], l2: float, sonnet_recall: float, policy: Policy = SHIPPED) -> None:
    """The trade-off: held-out (pooled LORO) cost against Opus recall, as the Opus cutpoint
    chosen on the training repositories moves."""
    print(
        f"{'target':>6} {'opus_rec':>8} {'s+_rec':>7} {'ucost':>6} {'triv':>5} "
        "tiers skip/haiku/sonnet/opus"
    )
    for target in (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9):
        m = loro(rows, l2, target, sonnet_recall, say=lambda _: None, policy=policy)
        shares = "/".join(f"{m['tier_shares'][t]:.2f}" for t in metrics.TIERS)
        print(
            f"{target:6.2f} {m['file_opus_recall']:8.3f} {m['file_sonnet_plus_recall']:7.3f} "
            f"{m['unit_cost_fraction']:6.3f} {m['trivial_cheap']:5.2f} {shares}"
        )


def floors(rows: Sequence[Row], l2: float, opus_recall: float, sonnet_recall: float) -> None:
    """The Opus size floor, decided on held-out numbers: for each rule, the cutpoints are chosen
    on the training repositories with the rule in force, then the held-out result is measured."""
    print(f"{'min_lines':>9} {'fixes':>5} {'auc':>6} {'opus_rec':>8} {'s+_rec':>7} {'ucost':>6}")
    for lines in (0, 3, 5, 10, 15, 20, 30):
        for fixes in (10**9,) if lines == 0 else (5, 10, 20, 10**9):
            policy = Policy(lines, fixes)
            m = loro(rows, l2, opus_recall, sonnet_recall, say=lambda _: None, policy=policy)
            shown = "any" if fixes == 10**9 else str(fixes)
            print(
                f"{lines:9d} {shown:>5} {m['auc']:6.3f} {m['file_opus_recall']:8.3f} "
                f"{m['file_sonnet_plus_recall']:7.3f} {m['unit_cost_fraction']:6.3f}"
            )


# --------------------------------------------------------------------------------------------
# Output: the shipped model file, or one per LORO fold (for TIERBOT_RISK_MODEL)
# --------------------------------------------------------------------------------------------
def all_weights(model: Model) -> dict[str, float]:
    out = {k: round(model.weights.get(k, 0.0), 4) for k in FEATURES}
    out.update({f"role.{k}": v for k, v in ROLE_OFFSETS.items()})
    return out


def write_model(model: Model, path: str, provenance: str, template: str | None = None) -> None:
    """Write `model` in the format of risk_model.yml, keeping the template's comments (the
    template is the shipped file; for a LORO fold, `path` is a new file)."""
    with open(template or path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    weights = all_weights(model)
    out = []
    for line in lines:
        stripped = line.strip()
        key = stripped.split(":", 1)[0]
        if line.startswith("base:"):
            line = f"base: {round(model.base, 4)}"
        elif line.startswith("fitted:"):
            line = f"fitted: {json.dumps(provenance)}"
        elif line.startswith("  ") and key in weights:
            comment = line.split("#", 1)[1] if "#" in line else ""
            line = f"  {key}: {weights[key]}".ljust(31) + (f"#{comment}" if comment else "")
            line = line.rstrip()
        out.append(line)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--features", required=True, help="features.py output (jsonl)")
    ap.add_argument("--l2", type=float, default=3.0)
    ap.add_argument(
        "--opus-recall",
        type=float,
        default=OPUS_TARGET,
        help="share of buggy training commits the opus cutpoint must reach",
    )
    ap.add_argument("--sonnet-recall", type=float, default=SONNET_TARGET)
    ap.add_argument(
        "--write",
        action="store_true",
        help="refit on every repository and rewrite tierbot/data/risk_model.yml",
    )
    ap.add_argument(
        "--fold-configs",
        metavar="DIR",
        help="write DIR/<owner>/<name>.yml: the model fitted without that repository, "
        "for TIERBOT_RISK_MODEL (run.py loro routes each commit with it)",
    )
    ap.add_argument(
        "--curve",
        action="store_true",
        help="print held-out cost against Opus recall for a range of targets",
    )
    ap.add_argument(
        "--floors",
        action="store_true",
        help="print held-out results for a grid of Opus size floors (route.OPUS_MIN_LINES, "
        "route.OPUS_HISTORY_FIXES)",
    )
    a = ap.parse_args(argv)
    with open(a.features, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if a.curve:
        curve(rows, a.l2, a.sonnet_recall)
        return 0
    if a.floors:
        floors(rows, a.l2, a.opus_recall, a.sonnet_recall)
        return 0
    loro(rows, a.l2, a.opus_recall, a.sonnet_recall)
    if a.fold_configs:
        for repo, model in loro_models(rows, a.l2, a.opus_recall, a.sonnet_recall).items():
            name = os.path.join(a.fold_configs, repo + ".yml")
            os.makedirs(os.path.dirname(name), exist_ok=True)
            others = ", ".join(sorted({r["repo"] for r in rows} - {repo}))
            write_model(
                model,
                name,
                f"LORO fold without {repo}: fitted on {others}",
                template=risk.MODEL_PATH.as_posix(),
            )
            print(f"wrote {name}")
    if a.write:
        model = fit_calibrated(rows, a.l2, a.opus_recall, a.sonnet_recall)
        repos = ", ".join(sorted({r["repo"] for r in rows}))
        write_model(
            model,
            risk.MODEL_PATH.as_posix(),
            f"{len(rows)} commits of {repos}; l2={a.l2}; cutpoints for "
            f"{a.opus_recall:.0%} / {a.sonnet_recall:.0%} recall",
        )
        print(f"wrote {risk.MODEL_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
