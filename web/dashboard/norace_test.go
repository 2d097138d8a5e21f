//go:build !race

package dashboard_test

const raceFactor = 1
