#!/usr/bin/python3
"""Reference values for value metrics (mean per user, e.g. revenue), with SciPy.

Run: /usr/bin/python3 make_reference_means.py > reference_means.json
Per-user values are simulated with a fixed seed; the Go test receives only the
moments (n, sum, sum of squares), as ClickHouse returns them, while the references
here come from the values themselves (numpy's two-pass variance). Method, as in
make_reference.py (gbstats' Welch t-test): the mean per user with v = s²/n, s² the
unbiased sample variance; relative lift (m_t - m_c)/|m_c| with the delta-method
variance, absolute lift m_t - m_c; Welch–Satterthwaite degrees of freedom; 95%
interval from t.ppf(0.975, df), two-sided p-value from t.sf; chance to beat control
P(m_t > m_c) under normal posteriors, norm.cdf((m_t - m_c)/√(v_t + v_c)).
Sizes run from 20 to 1,000,000 users per variant; "net refunds" has a negative
control mean, where the lift divides by its absolute value.
"""
import json
import math

import numpy as np
from scipy import stats

from make_reference import welch

rng = np.random.default_rng(42)


def revenue(n, spend, buy):
    """Zero for users who bought nothing, a gamma-distributed basket otherwise."""
    return np.where(rng.random(n) < buy, rng.gamma(2.0, spend / 2.0, n), 0.0)


def refunds(n, mean):
    """Net value per user that is negative on average (refunds exceed sales)."""
    return rng.normal(mean, 2.0, n)


CASES = [
    ("20 users", [revenue(20, 40.0, 0.5), revenue(20, 44.0, 0.5)]),
    ("50 users", [revenue(50, 40.0, 0.4), revenue(55, 30.0, 0.4)]),
    ("100 users", [revenue(100, 10.0, 0.3), revenue(100, 12.0, 0.3)]),
    ("small", [revenue(300, 10.0, 0.5), revenue(280, 9.0, 0.5)]),
    ("revenue", [revenue(5000, 40.0, 0.05), revenue(5100, 44.0, 0.05)]),
    ("three arms", [revenue(2000, 25.0, 0.1), revenue(2100, 27.0, 0.1), revenue(1900, 23.0, 0.1)]),
    ("100,000 users", [revenue(100000, 40.0, 0.05), revenue(100200, 41.0, 0.05)]),
    ("1,000,000 users", [revenue(1000000, 40.0, 0.05), revenue(1000000, 40.4, 0.05)]),
    ("net refunds", [refunds(500, -0.5), refunds(500, -0.2)]),
    ("net refunds, 1,000,000 users", [refunds(1000000, -0.5), refunds(1000000, -0.499)]),
]


def analyse(name, arms):
    c = arms[0]
    mc, vc = c.mean(), c.var(ddof=1) / len(c)
    out = []
    for t in arms[1:]:
        mt, vt = t.mean(), t.var(ddof=1) / len(t)
        r = welch(mc, vc, len(c), mt, vt, len(t))
        r["chance_to_beat_control"] = float(stats.norm.cdf((mt - mc) / math.sqrt(vt + vc)))
        out.append(r)
    return {"name": name,
            "moments": [{"n": len(a), "sum": float(a.sum()), "sumsq": float((a * a).sum())} for a in arms],
            "treatments": out}


if __name__ == "__main__":
    print(json.dumps([analyse(name, arms) for name, arms in CASES], indent=1))
