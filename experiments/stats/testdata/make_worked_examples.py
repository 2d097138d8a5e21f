#!/usr/bin/python3
"""Worked examples for CUPED and the sequential confidence sequence, in plain Python.

Run: /usr/bin/python3 make_worked_examples.py > worked_examples.json
CUPED is computed from the users' own (pre-period x, outcome y) pairs, never from the
aggregates the Go code receives: θ = Σ_v Σ_i (x−x̄_v)(y−ȳ_v) / Σ_v Σ_i (x−x̄_v)² pooled
within variants, each variant's adjusted mean ȳ_v − θ(x̄_v − x̄) with x̄ over all
users, and its variance the sample variance of y − θx within the variant over n_v.
The confidence sequence (Waudby-Smith et al. 2021, asymptotic, ρ tuned for n = 5000):
estimate ± σ·√(2(nρ²+1)/(n²ρ²)·ln(√(nρ²+1)/α)) with σ² = variance·n and
ρ² = (−2 ln α + ln(1 − 2 ln α))/tuning; its p-value is the α at which the sequence
touches zero, √(nρ²+1)·exp(−z²nρ²/(2(nρ²+1))) with z² = estimate²/variance.
"""
import json
import math
import sys

# Deterministic per-user data: a linear congruential generator, so the script needs
# nothing beyond the standard library.
state = 12345


def uniform():
    global state
    state = (1103515245 * state + 12345) % 2**31
    return state / 2**31


def users(n, effect):
    out = []
    for _ in range(n):
        x = 10 + 4 * (uniform() - 0.5)
        y = 20 + effect + 0.8 * (x - 10) + 2 * (uniform() - 0.5)
        out.append((x, y))
    return out


def mean(vs):
    return sum(vs) / len(vs)


def cuped(variants):
    num = den = 0.0
    for us in variants:
        mx, my = mean([x for x, _ in us]), mean([y for _, y in us])
        num += sum((x - mx) * (y - my) for x, y in us)
        den += sum((x - mx) ** 2 for x, _ in us)
    theta = num / den
    mx_all = mean([x for us in variants for x, _ in us])
    out = []
    for us in variants:
        adj = [y - theta * x for x, y in us]
        m = mean(adj)
        var = sum((a - m) ** 2 for a in adj) / (len(adj) - 1) / len(adj)
        out.append({"mean": mean([y for _, y in us]) - theta * (mean([x for x, _ in us]) - mx_all), "var": var})
    return theta, out


def sequence(estimate, variance, n, alpha, tuning):
    l = -2 * math.log(alpha)
    rho2 = (l + math.log(l + 1)) / tuning
    sigma = math.sqrt(variance * n)
    r = sigma * math.sqrt(2 * (n * rho2 + 1) / (n * n * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha))
    z2 = estimate * estimate / variance
    p = min(1.0, math.sqrt(n * rho2 + 1) * math.exp(-z2 * n * rho2 / (2 * (n * rho2 + 1))))
    return {"low": estimate - r, "high": estimate + r, "p_value": p}


variants = [users(40, 0.0), users(37, 0.6)]
theta, estimates = cuped(variants)
sequences = []
for estimate, variance, n in [(0.02, 1e-4, 2000), (0.5, 0.01, 300), (-0.05, 1e-4, 50000)]:
    s = sequence(estimate, variance, n, 0.05, 5000)
    s.update({"estimate": estimate, "variance": variance, "n": n, "alpha": 0.05, "tuning": 5000})
    sequences.append(s)
json.dump({"cuped": {"users": [[list(u) for u in us] for us in variants], "theta": theta, "estimates": estimates},
           "sequences": sequences}, sys.stdout, indent=1)
