#!/usr/bin/python3
"""Reference values for value metrics (mean per user, e.g. revenue), with SciPy.

Run: /usr/bin/python3 make_reference_means.py > reference_means.json
Per-user values are simulated with a fixed seed; the Go test receives only the
moments (n, sum, sum of squares), as ClickHouse returns them. Method: delta-method
relative lift with sample variances s²/n, normal CI and two-sided p-value; chance to
beat control P(μ_t > μ_c) under normal posteriors.
"""
import json
import math

import numpy as np
from scipy import stats

rng = np.random.default_rng(42)
CASES = []
for name, n_c, n_t, spend_c, spend_t, buy in [
    ("revenue", 5000, 5100, 40.0, 44.0, 0.05),
    ("small", 300, 280, 10.0, 9.0, 0.5),
    ("three arms", 2000, 2100, 25.0, 27.0, 0.1),
]:
    arms = []
    for n, spend in [(n_c, spend_c), (n_t, spend_t)] + ([(1900, 23.0)] if name == "three arms" else []):
        values = np.where(rng.random(n) < buy, rng.gamma(2.0, spend / 2.0, n), 0.0)
        arms.append(values)
    c = arms[0]
    mc, vc = c.mean(), c.var(ddof=1) / len(c)
    z = stats.norm.ppf(0.975)
    out = []
    for t in arms[1:]:
        mt, vt = t.mean(), t.var(ddof=1) / len(t)
        lift = mt / mc - 1
        var = vt / mc**2 + mt**2 * vc / mc**4
        se = math.sqrt(var)
        out.append({"lift": lift, "ci_low": lift - z * se, "ci_high": lift + z * se,
                    "p_value": float(2 * stats.norm.sf(abs(lift) / se)),
                    "chance_to_beat_control": float(stats.norm.cdf((mt - mc) / math.sqrt(vt + vc)))})
    CASES.append({"name": name,
                  "moments": [{"n": len(a), "sum": float(a.sum()), "sumsq": float((a * a).sum())} for a in arms],
                  "treatments": out})
print(json.dumps(CASES, indent=1))
