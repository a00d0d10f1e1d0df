package tokenizer

import (
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	"", " ", "A photo of the Buff-tailed Coronet Birds Boissonneaua flavescens",
	"don't can't it's we're they've I'm we'll he'd", "Fish & Chips &amp; more &lt;3 &#x27; &#0; &#99999999999;",
	"Café Ñandú über naïve", "Wilson’s Warbler", "emoji 🐦 bird", "日本語 テキスト",
	"<|startoftext|>inside<|endoftext|>", "\x1b[31mred\x1b[0m\x00\x93q\x94", "ﬁsh ＡＢＣ１ ΟΔΟΣ İ", "\xff\xfe invalid",
	strings.Repeat("a", 300), "'s 'S 'ſ 'LL 're",
}

// FuzzTokenize checks, on any input, that the tokenizer neither panics nor
// leaves the vocabulary, that wrapping keeps SOT first, EOT last before the
// padding and zeros after, and that cached and uncached encodings agree.
func FuzzTokenize(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	tok := fuzzTokenizer(f)
	f.Fuzz(func(t *testing.T, text string) {
		fresh := tok.Fresh()
		ids := tok.Encode(text)
		for _, id := range ids {
			if id < 0 || id >= VocabSize {
				t.Fatalf("id %d out of range", id)
			}
		}
		if again := fresh.Encode(text); !reflect.DeepEqual(again, ids) && !(len(again) == 0 && len(ids) == 0) {
			t.Fatalf("cached %v != fresh %v", ids, again)
		}
		for _, ctx := range []int{1, 5, DefaultContext} {
			row := tok.Tokenize(text, ctx)
			n := len(ids) + 2
			if n > ctx {
				n = ctx
			}
			if ctx > 1 && row[0] != SOT {
				t.Fatalf("ctx %d: row starts %d", ctx, row[0])
			}
			if row[n-1] != EOT {
				t.Fatalf("ctx %d: EOT not at %d: %v", ctx, n-1, row)
			}
			for _, v := range row[n:] {
				if v != 0 {
					t.Fatalf("ctx %d: padding not zero: %v", ctx, row)
				}
			}
			if n > 2 && !reflect.DeepEqual(row[1:n-1], ids[:n-2]) {
				t.Fatalf("ctx %d: row %v does not hold the ids %v", ctx, row, ids)
			}
		}
	})
}

// fuzzTokenizer is CLIP's tokenizer over the embedded vocabulary.
func fuzzTokenizer(f *testing.F) *Tokenizer { return loadTokenizer(f) }

// FuzzClean checks the cleaning alone (no vocabulary needed): valid UTF-8
// out, no whitespace at the ends or doubled inside.
func FuzzClean(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c := Clean(text)
		if !utf8.ValidString(c) {
			t.Fatalf("Clean(%q) = %q is not UTF-8", text, c)
		}
		if strings.TrimFunc(c, unicode.IsSpace) != c {
			t.Fatalf("Clean(%q) = %q has space at an end", text, c)
		}
		if strings.Contains(c, "  ") {
			t.Fatalf("Clean(%q) = %q has a double space", text, c)
		}
		for i := 0; ; {
			start, end, _ := nextWord(c, i)
			if start < 0 {
				break
			}
			if end <= start {
				t.Fatalf("empty word at %d in %q", start, c)
			}
			i = end
		}
	})
}
