#!/usr/bin/python3
"""Reference values for the analysis of adaptively allocated arms (bandits), with SciPy.

Run: /usr/bin/python3 make_reference_adaptive.py > reference_adaptive.json
Per-user conversions and values are simulated per period (a day of first exposure) and
arm with a fixed seed; the Go test receives only each period's moments. Method
(docs/statistics.md, "Bandits"), as GrowthBook weighs bandit periods:
- periods are merged, in time order within a group (a bandit segment), until every
  arm has at least 2 users and a sample variance above 0 (the last leftovers join the
  period before);
- w_s = N_s / N, the period's share of all users of all groups;
- each arm's mean m_k = sum_s w_s * mean_sk, its variance sum_s w_s^2 * var_sk / n_sk
  with the unbiased sample variance var_sk, and Welch–Satterthwaite degrees of
  freedom (sum c)^2 / sum c^2/(n - 1) over those terms c;
- the interval of each mean from t.ppf(0.975, df);
- P(best) and expected loss E[max_j mu_j] - m_k of normal posteriors N(m_k, v_k),
  integrated with scipy.integrate.quad;
- with a control, the other arms' relative and absolute lifts as in make_reference.py,
  the degrees of freedom from both arms' terms.
"""
import json
import math

import numpy as np
from scipy import integrate, stats

rng = np.random.default_rng(7)


def merge(periods):
    """lift's rule: merge until every arm has 2 users and a variance above 0."""
    out, cur = [], None
    for p in periods:
        cur = [list(a) for a in p] if cur is None else [ca + list(a) for ca, a in zip(cur, p)]
        if all(len(a) >= 2 and np.var(a) > 0 for a in cur):
            out.append(cur)
            cur = None
    if cur is not None:
        if out:
            out[-1] = [o + c for o, c in zip(out[-1], cur)]
        else:
            out.append(cur)
    return out


def analyse(name, groups, control):
    periods = [p for g in groups for p in merge(g)]
    arms = len(periods[0])
    total = sum(len(a) for p in periods for a in p)
    means, variances, terms = [], [], []
    for k in range(arms):
        m, v, ts = 0.0, 0.0, []
        for p in periods:
            w = sum(len(a) for a in p) / total
            y = np.array(p[k])
            c = w * w * y.var(ddof=1) / len(y)
            m += w * y.mean()
            v += c
            ts.append((c, len(y)))
        means.append(m)
        variances.append(v)
        terms.append(ts)

    def df(*ts):
        cs = [t for tt in ts for t in tt]
        return sum(c for c, _ in cs) ** 2 / sum(c * c / (n - 1) for c, n in cs)

    sds = [math.sqrt(v) for v in variances]
    pbest, emax = [], 0.0
    for k in range(arms):
        def density(x, k=k):
            f = stats.norm.pdf(x, means[k], sds[k])
            for j in range(arms):
                if j != k:
                    f *= stats.norm.cdf(x, means[j], sds[j])
            return f
        lo, hi = means[k] - 12 * sds[k], means[k] + 12 * sds[k]
        pts = sorted(m for m in means if lo < m < hi)
        pbest.append(integrate.quad(density, lo, hi, points=pts, epsabs=1e-13, epsrel=1e-12, limit=500)[0])
        emax += integrate.quad(lambda x: x * density(x), lo, hi, points=pts, epsabs=1e-13, epsrel=1e-12, limit=500)[0]
    out = []
    for k in range(arms):
        q = stats.t.ppf(0.975, df(terms[k]))
        a = {"value": means[k], "value_ci_low": means[k] - q * sds[k], "value_ci_high": means[k] + q * sds[k],
             "p_best": pbest[k], "expected_loss": emax - means[k],
             "naive_value": sum(sum(p[k]) for p in periods) / sum(len(p[k]) for p in periods)}
        if control is not None and k != control:
            mc, vc, mt, vt = means[control], variances[control], means[k], variances[k]
            d = df(terms[control], terms[k])
            q = stats.t.ppf(0.975, d)
            diff, se = mt - mc, math.sqrt(vc + vt)
            lift = (mt - mc) / abs(mc)
            rse = math.sqrt(vt / mc ** 2 + mt ** 2 * vc / mc ** 4)
            a.update({"df": d, "absolute_lift": diff, "absolute_ci_low": diff - q * se, "absolute_ci_high": diff + q * se,
                      "absolute_p_value": float(2 * stats.t.sf(abs(diff) / se, d)),
                      "lift": lift, "ci_low": lift - q * rse, "ci_high": lift + q * rse,
                      "p_value": float(2 * stats.t.sf(abs(lift) / rse, d))})
        out.append(a)
    return {"name": name, "control": -1 if control is None else control,
            "groups": [[[{"n": len(a), "sum": float(np.sum(a)), "sumsq": float(np.sum(np.square(a)))} for a in p] for p in g]
                       for g in groups],
            "arms": out}


def conversions(users, weights, rates):
    n = rng.multinomial(users, weights)
    return [list((rng.random(k) < r).astype(float)) for k, r in zip(n, rates)]


def revenue(users, weights, spends):
    n = rng.multinomial(users, weights)
    return [list(np.where(rng.random(k) < 0.2, rng.gamma(2.0, s / 2.0, k), 0.0)) for k, s in zip(n, spends)]


CASES = [
    # Two arms, 50/50 for a week then 90/10, the rate halving in the second week.
    ("moving weights, drift", [[conversions(1000, [0.5, 0.5] if d < 7 else [0.1, 0.9],
                                            [0.10, 0.11] if d < 7 else [0.05, 0.055]) for d in range(14)]], 0),
    # Three arms in two segments, weights moving differently, one starved arm whose
    # early days must be merged.
    ("three arms, two segments", [
        [conversions(400, w, [0.05, 0.07, 0.06]) for w in ([1 / 3] * 3, [0.2, 0.6, 0.2], [0.01, 0.9, 0.09], [0.01, 0.95, 0.04])],
        [conversions(300, w, [0.08, 0.05, 0.06]) for w in ([1 / 3] * 3, [0.6, 0.2, 0.2], [0.9, 0.05, 0.05])],
    ], None),
    ("revenue, three arms", [[revenue(600, w, [30.0, 34.0, 28.0]) for w in ([1 / 3] * 3, [0.3, 0.5, 0.2], [0.2, 0.7, 0.1])]], 0),
]

if __name__ == "__main__":
    print(json.dumps([analyse(*c) for c in CASES], indent=1))
