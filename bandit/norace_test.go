//go:build !race

package bandit_test

const simRounds = 100_000
