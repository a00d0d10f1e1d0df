package tokenizer

import (
	"reflect"
	"strings"
	"testing"
)

// synthVocab is a vocabulary in bpe_simple_vocab_16e6's shape (a version
// line, then numMerges merges) whose first merges are given and the rest
// filler merges of control-byte symbols, which cleaned ASCII never holds. It
// lets the BPE be tested without CLIP's file.
func synthVocab(merges ...string) string {
	table, _ := bytesToUnicode()
	var b strings.Builder
	b.WriteString("#version: synthetic\n")
	for _, m := range merges {
		b.WriteString(m + "\n")
	}
	base := make([]string, 32)
	for i := range base {
		base[i] = string(table[i])
	}
	need := numMerges - len(merges)
	for level := base; need > 0; {
		var next []string
		for _, l := range level {
			for _, r := range base {
				if need == 0 {
					break
				}
				b.WriteString(l + " " + r + "\n")
				next = append(next, l+r)
				need--
			}
		}
		level = next
	}
	return b.String()
}

// TestBPESemantics checks the merge loop against simple_tokenizer.bpe on a
// vocabulary small enough to follow by hand. Ids: byte symbol b is
// b-'!' for printable ASCII, +256 with "</w>"; merge r makes id 512+r.
func TestBPESemantics(t *testing.T) {
	tok, err := Parse(synthVocab(
		"a a",      // 512 aa
		"aa a</w>", // 513 aaa</w>
		"t h",      // 514 th
		"th e</w>", // 515 the</w>
		"c a",      // 516 ca
		"ca t</w>", // 517 cat</w>
		"h a</w>",  // 518 ha</w>: ranks after "t h"
	))
	if err != nil {
		t.Fatal(err)
	}
	sym := func(c byte) int32 { return int32(c - '!') }
	end := func(c byte) int32 { return int32(c-'!') + 256 }
	cases := []struct {
		text string
		want []int32
	}{
		{"aaaa", []int32{512, sym('a'), end('a')}}, // all (a,a) left to right, no overlap
		{"aaa", []int32{513}},                      // then the new pair
		{"a", []int32{end('a')}},                   // one symbol: no pairs
		{"The CAT", []int32{515, 517}},
		{"cats", []int32{516, sym('t'), end('s')}}, // "ca t" only merges at the word end
		{"tha", []int32{514, end('a')}},            // lowest rank first, not leftmost
		{"ha", []int32{518}},
		{"<|startoftext|>cat<|endoftext|>", []int32{SOT, 517, EOT}},
		{"cat!", []int32{517, end('!')}},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			if got := tok.Encode(c.text); !reflect.DeepEqual(got, c.want) {
				t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
			}
			// Same answer from the cache.
			if got := tok.Encode(c.text); !reflect.DeepEqual(got, c.want) {
				t.Errorf("cached Encode(%q) = %v, want %v", c.text, got, c.want)
			}
		})
	}
	if got := tok.Tokenize("The cat", 5); !reflect.DeepEqual(got, []int32{SOT, 515, 517, EOT, 0}) {
		t.Errorf("Tokenize = %v", got)
	}
	if got := tok.TokenizeBatch([]string{"aaa", "the aaa cat"}, 4); !reflect.DeepEqual(got, []int32{SOT, 513, EOT, 0, SOT, 515, 513, EOT}) {
		t.Errorf("TokenizeBatch = %v", got)
	}
	if got := tok.Decode([]int32{515, 512, sym('a'), end('a')}); got != "the aaaa " {
		t.Errorf("Decode = %q", got)
	}
	if got := tok.Len("the cat cat"); got != 5 {
		t.Errorf("Len = %d", got)
	}
}
