package bpe

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/tokenizer"
)

func TestVocabLoadsAndEncodesWholeWords(t *testing.T) {
	captions := []string{
		"A photo of the Synthetic Robin Birds Turdus synthetica",
		"A photo of the Pale Fern Plants Pteris pallida",
		"A photo of the Élan Moth Insects Noctua élan",
	}
	path := filepath.Join(t.TempDir(), "vocab.txt.gz")
	if err := WriteVocab(path, captions); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		t.Fatalf("tokenizer.Load of the demo vocabulary: %v", err)
	}
	for _, c := range captions {
		ids := tok.Encode(c)
		words := len(strings.Fields(c))
		if len(ids) != words {
			t.Errorf("%q: %d tokens %v, want one per word (%d)", c, len(ids), ids, words)
		}
		for _, id := range ids {
			if id < 256 || id >= tokenizer.SOT { // one-letter words are byte+</w> symbols (256..511)
				t.Errorf("%q: id %d is not a whole-word symbol", c, id)
			}
		}
		row := tok.Tokenize(c, 16)
		if row[0] != tokenizer.SOT || row[words+1] != tokenizer.EOT {
			t.Errorf("%q: wrapped row %v", c, row)
		}
	}
	// Text outside the captions still encodes (byte fallback), within the vocabulary.
	for _, id := range tok.Encode("zebra 42 ?!") {
		if id < 0 || id >= tokenizer.SOT {
			t.Errorf("unseen text: id %d", id)
		}
	}
	if a, b := tok.Encode("robin"), tok.Encode("fern"); len(a) != 1 || len(b) != 1 || a[0] == b[0] {
		t.Errorf("robin %v fern %v: want distinct single tokens", a, b)
	}
}

func TestLearnMergesDeterministic(t *testing.T) {
	texts := []string{"aa ab ab ba", "abc abc"}
	a, b := LearnMerges(texts, 100), LearnMerges(texts, 100)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d vs %d merges", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("merge %d differs: %v vs %v", i, a[i], b[i])
		}
	}
	if a[0] != [2]string{"a", "b"} && a[0] != [2]string{"a", "b</w>"} {
		t.Errorf("first merge %v, want the most frequent pair starting with a,b", a[0])
	}
}
