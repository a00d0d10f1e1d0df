package tokenizer

import "testing"

// TestClean pins CLIP's cleaning without the vocabulary: ftfy's fixes as
// ftfy 6 applies them (fix_text: unescape_html unless the line holds '<',
// C1 controls as Windows-1252, ligatures, character width, uncurl_quotes,
// line breaks, terminal escapes, control characters, NFC; repeated until
// stable), then html.unescape twice, whitespace collapsed, lower().
func TestClean(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"spaces only", " \t\n ", ""},
		{"ascii fast path", "  A Photo\tof\r\nthe  DOG ", "a photo of the dog"},
		{"figure 1", "A photo of the Buff-tailed Coronet Birds Boissonneaua flavescens", "a photo of the buff-tailed coronet birds boissonneaua flavescens"},
		{"curly apostrophe", "Wilson’s Warbler", "wilson's warbler"},
		{"curly double quotes", "“Quoted” ‘single’ ‚low‛", `"quoted" 'single' 'low'`},
		{"modifier apostrophe", "donʼt", "don't"},
		{"entities", "Fish & Chips &amp; more &lt;3", "fish & chips & more <3"},
		{"nested entities", "&amp;amp;amp;lt;", "<"},
		{"entity then ftfy fix", "it&rsquo;s", "it's"},
		{"line with '<' keeps ftfy off", "<b>&rsquo;</b>", "<b>’</b>"},
		{"upper-case entity", "CAF&EACUTE;", "café"},
		{"entity without semicolon", "AT&T &copy 2020", "at&t © 2020"},
		{"numeric entities", "&#65;&#x42;&#0;&#1;x&#128;", "ab\ufffdx€"},
		{"huge numeric entity", "&#99999999999999999999;", "\ufffd"},
		{"C1 controls as cp1252", "\u0093hi\u0094 \u0085", `"hi" …`},
		{"ligatures", "ﬁsh ﬂow ﬃx", "fish flow ffix"},
		{"full width", "ＡＢＣ１２　ｘ", "abc12 x"},
		{"half width katakana", "ｶﾀｶﾅ", "カタカナ"},
		{"NFC", "Cafe\u0301 A\u030a", "café å"},
		{"terminal escapes", "\x1b[31mred\x1b[0m text", "red text"},
		{"control characters", "a\x00b\x08c\x7fd\ufeffe\x0bf", "abcdef"},
		{"unicode spaces", "a\u00a0b\u2003c\u3000d\u2028e", "a b c d e"},
		{"final sigma", "ΟΔΟΣ ΣΑ ΑΣ.", "οδος σα ας."},
		{"dotted capital I", "İstanbul", "i̇stanbul"},
		{"invalid UTF-8", "a\xffb", "a\ufffdb"},
		{"special tokens kept", "<|startoftext|>Hi<|endoftext|>", "<|startoftext|>hi<|endoftext|>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Clean(c.in); got != c.want {
				t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

// TestSplit pins the pre-tokenizer (CLIP's pattern) on cleaned text.
func TestSplit(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"a photo of the dog.", []string{"a", "photo", "of", "the", "dog", "."}},
		{"don't we'll he'd i'm they've we're it's", []string{"don", "'t", "we", "'ll", "he", "'d", "i", "'m", "they", "'ve", "we", "'re", "it", "'s"}},
		{"rock 'n' roll", []string{"rock", "'", "n", "'", "roll"}},
		{"123 3.14", []string{"1", "2", "3", "3", ".", "1", "4"}},
		{"!!!'s ?..", []string{"!!!'", "s", "?.."}},
		{"hi!<|endoftext|>", []string{"hi", "!<|", "endoftext", "|>"}},
		{"<|startoftext|>x<|endoftext|>", []string{"<|startoftext|>", "x", "<|endoftext|>"}},
		{"naïve 日本語 🐦🐦 ²½", []string{"naïve", "日本語", "🐦🐦", "²", "½"}},
		{"^\u0345^ aa\u0345b", []string{"^", "^", "aa", "b"}},
		{"'ſ 'x", []string{"'ſ", "'", "x"}},
		{"\U000105c0\U000105c1", []string{"\U000105c0\U000105c1"}}, // letters since Unicode 16
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			var got []string
			for i := 0; ; {
				start, end, _ := nextWord(c.in, i)
				if start < 0 {
					break
				}
				got = append(got, c.in[start:end])
				i = end
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("got %q, want %q", got, c.want)
				}
			}
		})
	}
}
