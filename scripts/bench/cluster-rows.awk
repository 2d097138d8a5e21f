# Pairs the "single" and "cluster" cases of the Go benchmarks (scripts/benchmarks):
# for each benchmark with both, the median of its main figures over the runs (one
# slow run, such as a run during the merges that follow a first computation, does
# not move it) and the ratio cluster ÷ single, as a Markdown table; then what the
# figures split into: an insert's cost per batch and per event (a line through the
# 10,000 and 50,000 event batches) and a bandit update's fixed part (unchanged:
# counts, roots, generation) and the part that follows new rows (traffic −
# unchanged: the leaves they touched).
# Usage: awk -f cluster-rows.awk go.txt (any POSIX awk).
$1 ~ /^Benchmark.*\/(single|cluster)(\/.*)?-[0-9]+$/ {
  name = $1; sub(/-[0-9]+$/, "", name)
  for (i = 3; i < NF; i += 2) {
    unit = $(i + 1)
    if (unit !~ /^(events\/s|acked-events\/s|ms\/results|ms\/update|ms\/query)$/) continue
    key = name SUBSEP unit
    if (!(key in n)) order[++k] = key
    vals[key, ++n[key]] = $i
  }
}
function median(key,    a, i, j, m, v) {
  m = n[key]
  for (i = 1; i <= m; i++) { # insertion sort: a handful of runs
    v = vals[key, i] + 0
    for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]
    a[j + 1] = v
  }
  return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
function show(v) { return v >= 100 ? sprintf("%.0f", v) : sprintf("%.3g", v) }
END {
  print "| benchmark | figure | single | cluster | cluster ÷ single | runs |"
  print "|---|---|---:|---:|---:|---:|"
  for (j = 1; j <= k; j++) {
    split(order[j], p, SUBSEP)
    if (p[1] !~ /\/single/) continue
    c = p[1]; sub(/\/single/, "/cluster", c)
    ckey = c SUBSEP p[2]
    if (!(ckey in n)) continue
    s = median(order[j]); cl = median(ckey)
    label = p[1]; sub(/\/single/, "", label)
    printf "| %s | %s | %s | %s | %.2f | %d |\n", label, p[2], show(s), show(cl), cl / s, n[ckey]
  }
  print ""
  for (t = 1; t <= 2; t++) {
    topo = t == 1 ? "single" : "cluster"
    k1 = "BenchmarkInsert/" topo "/10000" SUBSEP "acked-events/s"
    k5 = "BenchmarkInsert/" topo "/50000" SUBSEP "acked-events/s"
    if ((k1 in n) && (k5 in n)) {
      t1 = 10000 / median(k1); t5 = 50000 / median(k5) # seconds per batch
      perEvent = (t5 - t1) / 40000
      printf "- Insert, %s: %.0f ms per batch + %.2f µs per event (acknowledged).\n", topo, 1000 * (t1 - 10000 * perEvent), 1e6 * perEvent
    }
    ku = "BenchmarkBanditUpdate10M/" topo "/unchanged" SUBSEP "ms/update"
    kt = "BenchmarkBanditUpdate10M/" topo "/traffic" SUBSEP "ms/update"
    if ((ku in n) && (kt in n))
      printf "- Bandit update, %s: %s ms whatever arrived (unchanged) + %s ms for 1,000 exposures and 100 purchases (traffic − unchanged).\n", topo, show(median(ku)), show(median(kt) - median(ku))
  }
}
