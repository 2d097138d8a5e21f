//go:build !race

package segments_test

const raceEnabled = false
