// Package conformance finds and reads the conformance data shared with other projects
// (shared/conformance beside the repository), for tests.
package conformance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// EnvDir names the environment variable that overrides where the data is looked for.
const EnvDir = "LIFT_CONFORMANCE_DIR"

// Dir returns the directory holding the conformance data: $LIFT_CONFORMANCE_DIR if set,
// otherwise shared/conformance beside the repository root (the nearest ancestor of the
// working directory that has a go.mod and such a sibling). The data is part of the
// contract, so when it cannot be found Dir fails the test instead of skipping it.
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv(EnvDir); d != "" {
		if !isDir(d) {
			t.Fatalf("conformance: %s=%q is not a directory", EnvDir, d)
		}
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("conformance: %v", err)
	}
	for d := wd; ; {
		if isFile(filepath.Join(d, "go.mod")) {
			candidate := filepath.Join(filepath.Dir(d), "shared", "conformance")
			if isDir(candidate) {
				return candidate
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	t.Fatalf("conformance: no shared/conformance beside the repository root above %s; copy shared/ next to the clone or set %s", wd, EnvDir)
	return ""
}

// Load decodes the JSON file at file, a slash-separated path relative to Dir (e.g.
// "growthbook/cases.json"), into v, failing the test if it cannot be read or decoded.
func Load(t testing.TB, file string, v any) {
	t.Helper()
	path := filepath.Join(Dir(t), filepath.FromSlash(file))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("conformance: %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("conformance: decode %s: %v", path, err)
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
