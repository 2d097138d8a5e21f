// Package conformance reads, for tests, the test suites lift shares with other projects:
//
//   - GrowthBook's SDK test cases (cases.json), read from the published
//     github.com/growthbook/growthbook-golang module at the version go.mod pins, which
//     ships the full suite at its root. lift's bucketing and condition language must
//     pass every case of the groups they implement.
//   - The OpenFeature Remote Evaluation Protocol's OpenAPI document, vendored in ofrep/
//     (see ofrep/README.md for its source and why it is a copy).
//
// Both are found wherever the repository is cloned. LIFT_CONFORMANCE_DIR overrides them
// with a directory laid out the same way (growthbook/cases.json, ofrep/openapi.yaml),
// e.g. to try a newer suite before pinning it. The data is part of the contract, so a
// missing file fails the test instead of skipping it.
package conformance

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	// The import keeps the module in go.mod (go mod tidy drops a module nothing imports)
	// and makes go test download it before the tests look for its cases.json.
	_ "github.com/growthbook/growthbook-golang"
)

// EnvDir names the environment variable that overrides where the data is read from.
const EnvDir = "LIFT_CONFORMANCE_DIR"

// The files this package knows, as slash-separated paths relative to $LIFT_CONFORMANCE_DIR.
const (
	GrowthBookCases = "growthbook/cases.json"
	OFREPSpec       = "ofrep/openapi.yaml"
)

// GrowthBookModule is the Go module whose root holds GrowthBook's cases.json.
const GrowthBookModule = "github.com/growthbook/growthbook-golang"

//go:embed ofrep/openapi.yaml
var ofrepSpec []byte

// Read returns the contents of file, one of GrowthBookCases and OFREPSpec, failing the
// test if it cannot be read.
func Read(t testing.TB, file string) []byte {
	t.Helper()
	if dir := os.Getenv(EnvDir); dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Fatalf("conformance: %s=%q is not a directory", EnvDir, dir)
		}
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file)))
		if err != nil {
			t.Fatalf("conformance: %v", err)
		}
		return data
	}
	switch file {
	case GrowthBookCases:
		dir, err := growthBookDir()
		if err != nil {
			t.Fatalf("conformance: %v", err)
		}
		data, err := os.ReadFile(filepath.Join(dir, "cases.json"))
		if err != nil {
			t.Fatalf("conformance: %v", err)
		}
		return data
	case OFREPSpec:
		return ofrepSpec
	}
	t.Fatalf("conformance: unknown file %q (known: %s, %s)", file, GrowthBookCases, OFREPSpec)
	return nil
}

// Load decodes the JSON file file (see Read) into v, failing the test if it cannot be
// read or decoded.
func Load(t testing.TB, file string, v any) {
	t.Helper()
	if err := json.Unmarshal(Read(t, file), v); err != nil {
		t.Fatalf("conformance: decode %s: %v", file, err)
	}
}

var growthBook struct {
	once sync.Once
	dir  string
	err  error
}

// growthBookDir returns the module cache directory of the pinned GrowthBook module.
// go mod download resolves the module to the version in go.mod (tests run inside the
// repository) and only looks the directory up when go test has already fetched it.
func growthBookDir() (string, error) {
	growthBook.once.Do(func() {
		out, err := exec.Command("go", "mod", "download", "-json", GrowthBookModule).Output()
		var m struct{ Dir, Error string }
		if jsonErr := json.Unmarshal(out, &m); jsonErr == nil && m.Dir != "" && err == nil {
			growthBook.dir = m.Dir
			return
		}
		detail := m.Error // set when the go command could not fetch the module
		if detail == "" {
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				detail = string(exit.Stderr)
			} else if err != nil {
				detail = err.Error()
			}
		}
		growthBook.err = fmt.Errorf("go mod download -json %s found no directory: %s", GrowthBookModule, strings.TrimSpace(detail))
	})
	return growthBook.dir, growthBook.err
}
