package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/cutover/cutover/internal/clidocs"
)

const referenceDir = "../../docs/reference"

// TestReferenceIsUpToDate: the pages under docs/reference are generated
// from the code; they were hand-written once, and drifted (a metric, a
// validation message and the root command's description no longer said
// what the binary did). Regenerated here, they must equal the checked-in
// pages, and no generated page may be left over.
func TestReferenceIsUpToDate(t *testing.T) {
	pages, err := referencePages()
	if err != nil {
		t.Fatal(err)
	}
	var stale []string
	for name, want := range pages {
		got, err := os.ReadFile(filepath.Join(referenceDir, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, want) {
			stale = append(stale, name)
		}
	}
	existing, err := clidocs.Generated(referenceDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range existing {
		if _, ok := pages[name]; !ok {
			stale = append(stale, name+" (no longer generated)")
		}
	}
	if len(stale) > 0 {
		slices.Sort(stale)
		t.Fatalf("docs/reference is out of date: run `make docs` (differs: %s)", strings.Join(stale, ", "))
	}
}

// TestReferenceIsDeterministic: two renderings are equal, so the check
// above never fails on a map's order or the clock.
func TestReferenceIsDeterministic(t *testing.T) {
	a, err := referencePages()
	if err != nil {
		t.Fatal(err)
	}
	b, err := referencePages()
	if err != nil {
		t.Fatal(err)
	}
	for name := range a {
		if !bytes.Equal(a[name], b[name]) {
			t.Errorf("%s differs between two renderings", name)
		}
	}
}

// TestGenDocsWritesAndPrunes: gen-docs writes every page and removes a
// generated page that is no longer generated, but never a page it did
// not write.
func TestGenDocsWritesAndPrunes(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "cli", "cutover_removed.md")
	mine := filepath.Join(dir, "notes.md")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Dir(old), 0o750))
	must(os.WriteFile(old, []byte(clidocs.Mark+"# gone\n"), 0o600))
	must(os.WriteFile(mine, []byte("# hand-written\n"), 0o600))
	n, err := writeReference(dir)
	must(err)
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("a page no longer generated was kept: %v", err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("a page gen-docs did not write was removed: %v", err)
	}
	written, err := clidocs.Generated(dir)
	must(err)
	if len(written) != n || n < 10 {
		t.Errorf("wrote %d pages, found %d generated", n, len(written))
	}
}

// mdLink is a Markdown link or image target: ](target).
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocsLinksResolve: every relative link of the README and of docs/
// names a file that exists and, with a #fragment into a Markdown page, a
// heading of that page. The README was split into pages, and a link that
// points at a section that moved is the first thing to break.
func TestDocsLinksResolve(t *testing.T) {
	files := []string{"../../README.md"}
	err := filepath.WalkDir("../../docs", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, target := range mdLinks(string(raw)) {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			dest := f
			if path != "" {
				dest = filepath.Join(filepath.Dir(f), filepath.FromSlash(path))
			}
			if _, err := os.Stat(dest); err != nil {
				t.Errorf("%s: link %s: no such file", f, target)
				continue
			}
			if frag == "" || !strings.HasSuffix(dest, ".md") {
				continue
			}
			if anchors[dest] == nil {
				anchors[dest] = headingAnchors(t, dest)
			}
			if !anchors[dest][frag] {
				t.Errorf("%s: link %s: %s has no heading with anchor #%s", f, target, dest, frag)
			}
		}
	}
}

// mdLinks lists the link targets of a page, outside fenced code blocks.
func mdLinks(page string) []string {
	var out []string
	fenced := false
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// headingAnchors are the anchors GitHub gives a page's headings: lower
// case, punctuation dropped, spaces as hyphens, repeats numbered.
func headingAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		a := githubAnchor(strings.TrimLeft(line, "#"))
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestGitHubAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"Redis → DynamoDB type mapping":            "redis--dynamodb-type-mapping",
		"8. The guarantees across commands":        "8-the-guarantees-across-commands",
		"Checking the result: `cutover reconcile`": "checking-the-result-cutover-reconcile",
		"sink.dynamodb.rules[]":                    "sinkdynamodbrules",
	} {
		if got := githubAnchor(heading); got != want {
			t.Errorf("anchor of %q = %q, want %q", heading, got, want)
		}
	}
}
