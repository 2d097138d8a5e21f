#!/usr/bin/python3
"""Reference values for conversion metrics, computed independently with SciPy.

Run with Debian's python3 and python3-scipy:  /usr/bin/python3 make_reference.py > reference.json
The Go tests read reference.json; this script documents how every number was made.
Methods (docs/statistics.md), written from the published formulas and the frequentist
t-test of GrowthBook's gbstats (packages/stats/gbstats, TwoSidedTTest):
- rates p = x/n with per-user variance s² = p(1-p), the estimate's v = s²/n;
- relative lift (p_t - p_c)/|p_c| with the delta-method variance
  v_t/p_c² + p_t²·v_c/p_c⁴; absolute lift p_t - p_c with variance v_t + v_c;
- Welch–Satterthwaite degrees of freedom (v_c + v_t)² / (v_c²/(n_c-1) + v_t²/(n_t-1));
- 95% interval estimate ± t.ppf(0.975, df)·se, two-sided p-value 2·t.sf(|estimate|/se, df);
- chance to beat control by Evan Miller's closed-form sum over Beta posteriors
  Beta(1+x, 1+n-x) (a different method from the Go engine's quadrature);
- SRM by scipy.stats.chisquare against the weights.
Sizes run from 20 to 1,000,000 users per variant.
"""
import json
import math

import numpy as np
from scipy import special, stats

CASES = [
    {"name": "20 users", "weights": [0.5, 0.5], "variants": [[20, 4], [20, 7]]},
    {"name": "20 users, nobody converts in the treatment", "weights": [0.5, 0.5], "variants": [[20, 3], [20, 0]]},
    {"name": "50 users", "weights": [0.5, 0.5], "variants": [[50, 5], [52, 9]]},
    {"name": "100 users", "weights": [0.5, 0.5], "variants": [[100, 2], [100, 1]]},
    {"name": "everyone converts in the control", "weights": [0.5, 0.5], "variants": [[50, 50], [50, 49]]},
    {"name": "small", "weights": [0.5, 0.5], "variants": [[1000, 100], [1000, 120]]},
    {"name": "typical", "weights": [0.5, 0.5], "variants": [[10000, 500], [10020, 560]]},
    {"name": "three arms", "weights": [0.2, 0.3, 0.5], "variants": [[2000, 100], [3050, 170], [4900, 230]]},
    {"name": "100,000 users", "weights": [0.5, 0.5], "variants": [[100000, 3000], [100400, 3150]]},
    {"name": "large", "weights": [0.5, 0.5], "variants": [[1000000, 31000], [1001000, 31900]]},
    {"name": "srm", "weights": [0.5, 0.5], "variants": [[10000, 800], [10600, 850]]},
    {"name": "worse", "weights": [0.5, 0.5], "variants": [[5000, 400], [5000, 330]]},
    {"name": "far apart", "weights": [0.5, 0.5], "variants": [[1000000, 10000], [1000000, 13000]]},
    {"name": "uneven weights", "weights": [0.1, 0.9], "variants": [[1003, 47], [8997, 470]]},
]


def chance_to_beat(nc, xc, nt, xt):
    """P(B_t > B_c), Evan Miller's formula, summed in log space."""
    a_c, b_c = 1 + xc, 1 + nc - xc
    a_t, b_t = 1 + xt, 1 + nt - xt
    i = np.arange(0, a_t)
    terms = (special.betaln(a_c + i, b_c + b_t) - np.log(b_t + i)
             - special.betaln(1 + i, b_t) - special.betaln(a_c, b_c))
    return float(np.exp(special.logsumexp(terms)))


def welch(mc, vc, nc, mt, vt, nt):
    """Relative and absolute comparisons of two means, each with the variance of the
    mean (v) and its users, by Welch's t."""
    df = (vc + vt) ** 2 / (vc ** 2 / (nc - 1) + vt ** 2 / (nt - 1))
    q = stats.t.ppf(0.975, df)
    out = {"df": df}
    diff, se = mt - mc, math.sqrt(vc + vt)
    out.update({"absolute_lift": diff, "absolute_ci_low": diff - q * se, "absolute_ci_high": diff + q * se,
                "absolute_p_value": float(2 * stats.t.sf(abs(diff) / se, df))})
    # The relative lift needs a control mean other than 0, and a delta-method variance
    # above 0 (a treatment mean of 0 makes it vanish however uncertain the control is).
    se = math.sqrt(vt / mc ** 2 + mt ** 2 * vc / mc ** 4) if mc != 0 else 0
    if se > 0:
        lift = (mt - mc) / abs(mc)
        out.update({"lift": lift, "ci_low": lift - q * se, "ci_high": lift + q * se,
                    "p_value": float(2 * stats.t.sf(abs(lift) / se, df))})
    return out


def analyse(case):
    (nc, xc) = case["variants"][0]
    pc = xc / nc
    out = []
    for n, x in case["variants"][1:]:
        pt = x / n
        r = welch(pc, pc * (1 - pc) / nc, nc, pt, pt * (1 - pt) / n, n)
        r["chance_to_beat_control"] = chance_to_beat(nc, xc, n, x)
        out.append(r)
    users = np.array([v[0] for v in case["variants"]], dtype=float)
    expected = users.sum() * np.array(case["weights"])
    srm = stats.chisquare(users, expected).pvalue
    return {"name": case["name"], "input": {"weights": case["weights"],
            "variants": [{"key": f"v{i}", "users": n, "conversions": x} for i, (n, x) in enumerate(case["variants"])]},
            "treatments": out, "srm_p_value": float(srm)}


if __name__ == "__main__":
    print(json.dumps([analyse(c) for c in CASES], indent=1))
