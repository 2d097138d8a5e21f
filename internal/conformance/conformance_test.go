package conformance_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftlab/lift/internal/conformance"
	"github.com/liftlab/lift/internal/openapi"
)

// recorder captures a fatal failure instead of stopping the test, to check that missing
// data fails rather than skips.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	if r.fatal == "" {
		r.fatal = fmt.Sprintf(format, args...)
	}
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

// pinnedVersion is the version of the GrowthBook module that go.mod pins.
func pinnedVersion(t *testing.T) string {
	t.Helper()
	out, err := runGo("list", "-m", "-f", "{{.Version}}", conformance.GrowthBookModule)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func TestGrowthBookCasesFromPinnedModule(t *testing.T) {
	t.Setenv(conformance.EnvDir, "")
	var cases struct {
		SpecVersion   string `json:"specVersion"`
		EvalCondition []any  `json:"evalCondition"`
		Hash          []any  `json:"hash"`
	}
	conformance.Load(t, conformance.GrowthBookCases, &cases)
	if cases.SpecVersion == "" || len(cases.EvalCondition) == 0 || len(cases.Hash) == 0 {
		t.Fatalf("cases.json lacks specVersion, evalCondition or hash: %+v", cases)
	}

	// The bytes are those of the module's own cases.json at the pinned version.
	version := pinnedVersion(t)
	want := filepath.Join(moduleCache(t), "github.com", "growthbook", "growthbook-golang@"+version, "cases.json")
	data, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if got := conformance.Read(t, conformance.GrowthBookCases); string(got) != string(data) {
		t.Errorf("Read(%s) is not %s", conformance.GrowthBookCases, want)
	}
	t.Logf("%s %s: spec %s, %d evalCondition cases", conformance.GrowthBookModule, version, cases.SpecVersion, len(cases.EvalCondition))
}

// moduleCache is GOMODCACHE as the go command reports it.
func moduleCache(t *testing.T) string {
	t.Helper()
	out, err := runGo("env", "GOMODCACHE")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func TestOFREPSpecVendored(t *testing.T) {
	t.Setenv(conformance.EnvDir, "")
	doc, err := openapi.Parse(conformance.Read(t, conformance.OFREPSpec))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := doc.Root["info"].(map[string]any)
	if info["title"] != "OpenFeature Remote Evaluation Protocol (OFREP)" || info["version"] != "0.3.0" {
		t.Errorf("info = %v, want OFREP 0.3.0 (see ofrep/README.md)", info)
	}
}

func TestReadFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "growthbook"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "growthbook", "cases.json"), []byte(`{"n": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(conformance.EnvDir, dir)
	var v struct{ N int }
	conformance.Load(t, conformance.GrowthBookCases, &v)
	if v.N != 3 {
		t.Errorf("Load decoded %+v, want the overriding file", v)
	}
}

func TestMissingDataFails(t *testing.T) {
	tests := []struct {
		name, env, file string
	}{
		{"environment names no directory", filepath.Join(t.TempDir(), "missing"), conformance.GrowthBookCases},
		{"file missing from the directory", t.TempDir(), conformance.OFREPSpec},
		{"unknown file", "", "growthbook/other.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(conformance.EnvDir, tt.env)
			r := &recorder{TB: t}
			conformance.Read(r, tt.file)
			if r.fatal == "" {
				t.Errorf("Read(%q) with %s=%q did not fail", tt.file, conformance.EnvDir, tt.env)
			}
		})
	}
}

func runGo(args ...string) (string, error) {
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}
