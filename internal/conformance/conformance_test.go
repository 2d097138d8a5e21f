package conformance_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/liftlab/lift/internal/conformance"
)

// recorder captures a fatal failure instead of stopping the test, to check that a
// missing directory fails rather than skips.
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

// layout builds <root>/clone/go.mod and <root>/clone/a/b, with shared/conformance
// beside the clone when withShared is set.
func layout(t *testing.T, withShared bool) (root, deep string) {
	t.Helper()
	root = t.TempDir()
	deep = filepath.Join(root, "clone", "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "clone", "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if withShared {
		dir := filepath.Join(root, "shared", "conformance")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "x.json"), []byte(`{"n": 3}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, deep
}

func TestDirBesideClone(t *testing.T) {
	t.Setenv(conformance.EnvDir, "")
	root, deep := layout(t, true)
	t.Chdir(deep)
	if got, want := conformance.Dir(t), filepath.Join(root, "shared", "conformance"); got != want {
		t.Errorf("Dir = %q, want %q", got, want)
	}
	var v struct{ N int }
	conformance.Load(t, "x.json", &v)
	if v.N != 3 {
		t.Errorf("Load decoded %+v", v)
	}
}

func TestDirFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(conformance.EnvDir, dir)
	if got := conformance.Dir(t); got != dir {
		t.Errorf("Dir = %q, want %q", got, dir)
	}
}

func TestDirMissingFails(t *testing.T) {
	t.Run("no shared directory", func(t *testing.T) {
		t.Setenv(conformance.EnvDir, "")
		_, deep := layout(t, false)
		t.Chdir(deep)
		r := &recorder{TB: t}
		conformance.Dir(r)
		if r.fatal == "" {
			t.Error("Dir did not fail without shared/conformance")
		}
	})
	t.Run("environment names no directory", func(t *testing.T) {
		t.Setenv(conformance.EnvDir, filepath.Join(t.TempDir(), "missing"))
		r := &recorder{TB: t}
		conformance.Dir(r)
		if r.fatal == "" {
			t.Errorf("Dir did not fail for a missing %s", conformance.EnvDir)
		}
	})
}
