package tokenizer

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/litcache/litcache/internal/tokenizer/clipvocab"
)

// TestOpen: Open("") is the embedded vocabulary, and a vocabulary file, gzip
// or plain text, gives the same ids as the embedded one when it is CLIP's.
func TestOpen(t *testing.T) {
	ref := loadReference(t)
	dir := t.TempDir()
	gz := filepath.Join(dir, clipvocab.Name)
	if err := os.WriteFile(gz, clipvocab.Gzip, 0o644); err != nil {
		t.Fatal(err)
	}
	text, err := gunzip(clipvocab.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "vocab.txt")
	if err := os.WriteFile(plain, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", gz, plain} {
		tok, err := Open(path)
		if err != nil {
			t.Fatalf("Open(%q): %v", path, err)
		}
		for _, c := range ref.Figure1 {
			if got := tok.Tokenize(c.Caption, ref.ContextLength); !reflect.DeepEqual(got, c.IDs) {
				t.Errorf("Open(%q): %q:\n got %v\nwant %v", path, c.Caption, trim(got), trim(c.IDs))
			}
		}
	}
	if _, err := Open(filepath.Join(dir, "missing.txt.gz")); err == nil {
		t.Error("Open of a missing file succeeded")
	}
}
