"""Role-aware output-length prediction for KV reservation.

The predictor is a bucketed conditional quantile: per role, calls are split into input-length
buckets (quantiles of the role's input lengths); each bucket predicts the q-th percentile of the
output tokens of its training calls. Buckets with fewer than `min_rows` calls fall back to the
role's quantile. The role-agnostic baseline is the same estimator with every call in one group,
so the comparison isolates what knowing the role is worth.

Scoring on held-out calls (a deterministic split by trace id, so calls of one query stay on one
side): the pinball (quantile) loss at q, the proper scoring rule for a q-quantile forecast
(Koenker & Bassett 1978; Gneiting & Raftery, JASA 2007), the coverage (share of outputs at or
below the prediction, ideally q) and the mean prediction (what the KV reservation costs).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


def rows_for(q: float) -> int:
    """Calls a bucket needs before its own q-quantile is trusted: about 5 expected exceedances
    (q = 0.99 -> 500, q = 0.9 -> 50), at least 20."""
    return max(20, int(np.ceil(5.0 / max(1e-6, 1.0 - q))))


@dataclass
class BucketQuantile:
    q: float  # quantile in (0, 1)
    by_role: bool = True
    n_buckets: int = 4
    min_rows: int | None = None  # default: rows_for(q)
    edges: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    fallback: dict[str, float] = field(default_factory=dict)
    overall: float = 0.0

    def _key(self, roles: np.ndarray) -> np.ndarray:
        return roles.astype(str) if self.by_role else np.full(len(roles), "*", dtype=object)

    def fit(self, roles: np.ndarray, inp: np.ndarray, out: np.ndarray) -> BucketQuantile:
        if self.min_rows is None:
            self.min_rows = rows_for(self.q)
        keys = self._key(roles)
        self.overall = float(np.quantile(out, self.q))
        for k in np.unique(keys):
            m = keys == k
            x, y = inp[m], out[m]
            self.fallback[k] = float(np.quantile(y, self.q))
            nb = max(1, min(self.n_buckets, len(y) // max(1, self.min_rows)))
            inner = np.unique(np.quantile(x, np.linspace(0, 1, nb + 1)[1:-1])) if nb > 1 else np.array([])
            self.edges[k] = inner
            idx = np.searchsorted(inner, x, side="right")
            vals = np.empty(len(inner) + 1)
            for b in range(len(inner) + 1):
                yb = y[idx == b]
                vals[b] = np.quantile(yb, self.q) if len(yb) >= self.min_rows else self.fallback[k]
            self.values[k] = vals
        return self

    def predict(self, roles: np.ndarray, inp: np.ndarray) -> np.ndarray:
        keys = self._key(roles)
        outp = np.full(len(inp), self.overall, dtype=float)
        for k in np.unique(keys):
            if k not in self.values:
                continue
            m = keys == k
            idx = np.searchsorted(self.edges[k], inp[m], side="right")
            outp[m] = self.values[k][idx]
        return outp


def pinball(y: np.ndarray, pred: np.ndarray, q: float) -> float:
    d = y - pred
    return float(np.mean(np.maximum(q * d, (q - 1) * d))) if len(y) else float("nan")


def holdout_mask(groups: np.ndarray, share: float = 0.25, salt: str = "maestro-plan-fit") -> np.ndarray:
    """Deterministic held-out split: a group (trace id) is held out when the first 8 bytes of
    md5(salt + id) fall below `share` of the range. Same input, same split, on any machine."""
    uniq, inv = np.unique(groups.astype(str), return_inverse=True)
    h = np.array([int.from_bytes(hashlib.md5((salt + u).encode()).digest()[:8], "big") for u in uniq], dtype=np.float64)
    test = h / 2.0**64 < share
    return test[inv]


@dataclass
class RoleScore:
    role: str
    n_test: int
    aware_loss: float
    base_loss: float
    aware_coverage: float
    base_coverage: float
    aware_mean_pred: float
    base_mean_pred: float
    aware_mae_p50: float
    base_mae_p50: float


@dataclass
class Evaluation:
    q: float
    n_train: int
    n_test: int
    aware_loss: float
    base_loss: float
    aware_coverage: float
    base_coverage: float
    aware_mae_p50: float
    base_mae_p50: float
    roles: dict[str, RoleScore]
    note: str = ""

    @property
    def improvement(self) -> float:
        """Relative reduction of the pinball loss against the role-agnostic baseline."""
        return 1.0 - self.aware_loss / self.base_loss if self.base_loss > 0 else 0.0


def evaluate(roles: np.ndarray, inp: np.ndarray, out: np.ndarray, groups: np.ndarray, q: float, min_rows: int | None = None) -> Evaluation | None:
    """Fit on the training split, score on the held-out split; None when too few calls."""
    test = holdout_mask(groups)
    train = ~test
    if test.sum() < 10 or train.sum() < 10:
        return None
    r_tr, r_te = roles[train], roles[test]
    preds = {}
    for name, by_role in (("aware", True), ("base", False)):
        hi = BucketQuantile(q, by_role=by_role, min_rows=min_rows).fit(r_tr, inp[train], out[train])
        med = BucketQuantile(0.5, by_role=by_role, min_rows=min_rows).fit(r_tr, inp[train], out[train])
        preds[name] = (hi.predict(r_te, inp[test]), med.predict(r_te, inp[test]))
    y = out[test]
    per: dict[str, RoleScore] = {}
    for role in np.unique(r_te.astype(str)):
        m = r_te.astype(str) == role
        a, b = preds["aware"], preds["base"]
        per[role] = RoleScore(
            role=role,
            n_test=int(m.sum()),
            aware_loss=pinball(y[m], a[0][m], q),
            base_loss=pinball(y[m], b[0][m], q),
            aware_coverage=float(np.mean(y[m] <= a[0][m])),
            base_coverage=float(np.mean(y[m] <= b[0][m])),
            aware_mean_pred=float(np.mean(a[0][m])),
            base_mean_pred=float(np.mean(b[0][m])),
            aware_mae_p50=float(np.mean(np.abs(y[m] - a[1][m]))),
            base_mae_p50=float(np.mean(np.abs(y[m] - b[1][m]))),
        )
    a, b = preds["aware"], preds["base"]
    return Evaluation(
        q=q,
        n_train=int(train.sum()),
        n_test=int(test.sum()),
        aware_loss=pinball(y, a[0], q),
        base_loss=pinball(y, b[0], q),
        aware_coverage=float(np.mean(y <= a[0])),
        base_coverage=float(np.mean(y <= b[0])),
        aware_mae_p50=float(np.mean(np.abs(y - a[1]))),
        base_mae_p50=float(np.mean(np.abs(y - b[1]))),
        roles=per,
    )
