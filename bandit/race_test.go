//go:build race

package bandit_test

// The race detector slows the simulator about tenfold, so the reduced benchmark runs
// a shorter horizon under it.
const simRounds = 20_000
