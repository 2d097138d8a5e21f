package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoPath matches the repository paths docs/architecture.md names: a top-level
// folder, then more path (globs allowed), ending before punctuation.
var repoPath = regexp.MustCompile("(?:^|[\\s(|`,])((?:cmd|experiments|bandit|segments|ingest|web|migrations|internal|scripts|docs)/[A-Za-z0-9_./*{}-]*[A-Za-z0-9_*])")

// TestArchitectureMap: every file and folder docs/architecture.md points a reader to
// exists (the table of what moved names old paths and is left out), so the map does
// not rot as code moves.
func TestArchitectureMap(t *testing.T) {
	doc, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := strings.Cut(string(doc), "## What moved")
	seen := 0
	for _, m := range repoPath.FindAllStringSubmatch(text, -1) {
		p := m[1]
		// "segments/pgstore.SegmentEraser" names a declaration in a package.
		if i := strings.IndexFunc(p, func(r rune) bool { return r == '.' }); i > 0 && i+1 < len(p) && p[i+1] >= 'A' && p[i+1] <= 'Z' {
			p = p[:i]
		}
		matches, err := filepath.Glob(filepath.Join("../..", p))
		if err != nil || len(matches) == 0 {
			t.Errorf("docs/architecture.md names %s, which does not exist", p)
		}
		seen++
	}
	if seen < 50 {
		t.Errorf("found only %d paths in docs/architecture.md; is the pattern still right?", seen)
	}
}
