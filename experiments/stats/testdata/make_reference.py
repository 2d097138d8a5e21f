#!/usr/bin/python3
"""Reference values for lift's statistics engine, computed independently with SciPy.

Run with Debian's python3 and python3-scipy:  /usr/bin/python3 make_reference.py > reference.json
The Go tests read reference.json; this script documents how every number was made.
Methods (docs/statistics.md): delta-method relative lift with normal CI and
two-sided p-value; chance to beat control by Evan Miller's closed-form sum over Beta
posteriors Beta(1+x, 1+n-x) (a different method from the Go engine's quadrature); SRM by
scipy.stats.chisquare against the weights.
"""
import json
import math

import numpy as np
from scipy import special, stats

CASES = [
    {"name": "small", "weights": [0.5, 0.5], "variants": [[1000, 100], [1000, 120]]},
    {"name": "typical", "weights": [0.5, 0.5], "variants": [[10000, 500], [10020, 560]]},
    {"name": "three arms", "weights": [0.2, 0.3, 0.5], "variants": [[2000, 100], [3050, 170], [4900, 230]]},
    {"name": "large", "weights": [0.5, 0.5], "variants": [[1000000, 31000], [1001000, 31900]]},
    {"name": "srm", "weights": [0.5, 0.5], "variants": [[10000, 800], [10600, 850]]},
    {"name": "worse", "weights": [0.5, 0.5], "variants": [[5000, 400], [5000, 330]]},
    {"name": "few conversions", "weights": [0.5, 0.5], "variants": [[100, 2], [100, 1]]},
    {"name": "everyone converts", "weights": [0.5, 0.5], "variants": [[50, 50], [50, 49]]},
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


def analyse(case):
    (nc, xc) = case["variants"][0]
    pc = xc / nc
    vc = pc * (1 - pc) / nc
    z = stats.norm.ppf(0.975)
    out = []
    for n, x in case["variants"][1:]:
        pt = x / n
        vt = pt * (1 - pt) / n
        lift = pt / pc - 1
        var = vt / pc**2 + pt**2 * vc / pc**4
        se = math.sqrt(var)
        out.append({
            "lift": lift,
            "ci_low": lift - z * se,
            "ci_high": lift + z * se,
            "p_value": float(2 * stats.norm.sf(abs(lift) / se)),
            "chance_to_beat_control": chance_to_beat(nc, xc, n, x),
        })
    users = np.array([v[0] for v in case["variants"]], dtype=float)
    expected = users.sum() * np.array(case["weights"])
    srm = stats.chisquare(users, expected).pvalue
    return {"name": case["name"], "input": {"weights": case["weights"],
            "variants": [{"key": f"v{i}", "users": n, "conversions": x} for i, (n, x) in enumerate(case["variants"])]},
            "treatments": out, "srm_p_value": float(srm)}


if __name__ == "__main__":
    print(json.dumps([analyse(c) for c in CASES], indent=1))
