package evaluate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/inat"
)

func TestOpenAITemplates(t *testing.T) {
	if len(OpenAITemplates) != 80 {
		t.Fatalf("%d OpenAI templates, want 80", len(OpenAITemplates))
	}
	seen := map[string]bool{}
	for _, tm := range OpenAITemplates {
		if strings.Count(tm, "{}") != 1 || seen[tm] {
			t.Errorf("template %q: want one {} and no duplicate", tm)
		}
		seen[tm] = true
	}
}

func TestExpandTemplate(t *testing.T) {
	robin := fourClasses()[0]
	robin.Caption = "A photo of the American Robin Aves Turdus migratorius"
	noCommon := robin
	noCommon.CommonName = ""
	cases := []struct {
		name, tmpl string
		c          inat.Class
		want, err  string
	}{
		{"subject", "a photo of a {}.", robin, "a photo of a American Robin.", ""},
		{"subject falls back to name", "a photo of a {}.", noCommon, "a photo of a Turdus migratorius.", ""},
		{"caption", "{caption}", robin, robin.Caption, ""},
		{"fields", "{genus} {specific_epithet}, a {class}", robin, "Turdus migratorius, a Aves", ""},
		{"species", "{species}", robin, "Turdus migratorius", ""},
		{"empty field collapses", "the {common_name} bird", noCommon, "the bird", ""},
		{"braces", "{{x}} {}", robin, "{x} American Robin", ""},
		{"unknown field", "a {colour} bird", robin, "", "unknown field {colour}"},
		{"unclosed", "a {genus bird", robin, "", "unclosed"},
		{"stray close", "a } bird", robin, "", "without"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ExpandTemplate(tc.tmpl, tc.c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestResolveTemplates(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	os.WriteFile(good, []byte("# my prompts\n\na photo of a {}.\n  {caption}  \n"), 0o644)
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("a photo of a {}.\na {colour} one\n"), 0o644)
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, []byte("# nothing\n"), 0o644)
	cases := []struct {
		spec string
		n    int
		err  string
	}{
		{"caption", 1, ""},
		{"", 1, ""},
		{"openai", 80, ""},
		{good, 2, ""},
		{bad, 0, "line 2"},
		{empty, 0, "no template"},
		{filepath.Join(dir, "missing.txt"), 0, "want caption, openai or a file"},
	}
	for _, tc := range cases {
		t.Run(filepath.Base(tc.spec), func(t *testing.T) {
			got, err := ResolveTemplates(tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || len(got) != tc.n {
				t.Fatalf("got %d templates, %v; want %d", len(got), err, tc.n)
			}
		})
	}
}

func FuzzParseTemplates(f *testing.F) {
	f.Add([]byte("a photo of a {}.\n{caption}\n"))
	f.Add([]byte("# c\n{{}} {genus} {specific_epithet}\n"))
	f.Add([]byte("{\n}\n{unknown}"))
	f.Add([]byte(""))
	robin := fourClasses()[0]
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := ParseTemplates(data)
		if err != nil {
			return
		}
		for _, tm := range ts {
			// Every accepted template must expand for any class.
			if _, err := ExpandTemplate(tm, robin); err != nil {
				t.Fatalf("accepted template %q fails: %v", tm, err)
			}
		}
	})
}

func TestWithSubject(t *testing.T) {
	robin := fourClasses()[0]
	got, err := WithSubject([]string{"a photo of a {}.", "{{}} {}", "{caption}"}, "name")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a photo of a Turdus migratorius.", "{} Turdus migratorius", "c"}
	for i, tm := range got {
		s, err := ExpandTemplate(tm, robin)
		if err != nil || s != want[i] {
			t.Errorf("template %d: %q (%v), want %q", i, s, err, want[i])
		}
	}
	if same, _ := WithSubject(OpenAITemplates, ""); len(same) != 80 || same[0] != OpenAITemplates[0] {
		t.Error("empty subject changed the templates")
	}
	if _, err := WithSubject(OpenAITemplates, "colour"); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("err %v", err)
	}
}
