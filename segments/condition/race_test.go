//go:build race

package condition_test

// raceEnabled: under the race detector sync.Pool drops a quarter of what is put back
// (on purpose, to find misuse), so code that reuses pooled values — regexp's matchers
// — allocates now and then.
const raceEnabled = true
