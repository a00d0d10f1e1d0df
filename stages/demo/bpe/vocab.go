// Package bpe learns a byte-level BPE vocabulary from a few texts and writes
// it in the format of CLIP's bpe_simple_vocab_16e6.txt.gz, for the demo and
// for tests that need a tokenizer without CLIP's file.
package bpe

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/litcache/litcache/internal/tokenizer"
)

// CLIP's vocabulary file, bpe_simple_vocab_16e6.txt.gz, is not part of the
// repository, and the demo must run from the repository alone. So the demo
// learns a byte-level BPE from its own captions and writes it in exactly
// that file's format — a version line, then 48,894 merges "left right" in
// rank order — so that tokenizer.Load reads it unchanged and every id keeps
// CLIP's layout (256 byte symbols, 256 with "</w>", one per merge, SOT 49406,
// EOT 49407). The merges learned from the captions come first; the rest are
// filler merges of control-byte symbols that cleaned text never contains, so
// they never fire.

// clipMerges is how many merges CLIP's tokenizer reads from the file.
const clipMerges = 49152 - 256 - 2

// byteSymbols is CLIP's bytes_to_unicode table: printable Latin-1 bytes map
// to themselves, the others to U+0100 onwards in byte order.
func byteSymbols() [256]rune {
	var table [256]rune
	var printable [256]bool
	for _, r := range [][2]int{{'!', '~'}, {0xa1, 0xac}, {0xae, 0xff}} {
		for b := r[0]; b <= r[1]; b++ {
			table[b] = rune(b)
			printable[b] = true
		}
	}
	n := 0
	for b := 0; b < 256; b++ {
		if !printable[b] {
			table[b] = rune(256 + n)
			n++
		}
	}
	return table
}

// preTokens splits cleaned text as CLIP's pattern does for plain captions:
// runs of letters, single digits, and runs of other non-space characters.
func preTokens(text string) []string {
	var out []string
	s := tokenizer.Clean(text)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		j := i + size
		switch {
		case unicode.IsSpace(r):
			i = j
			continue
		case unicode.IsLetter(r):
			for j < len(s) {
				r2, n := utf8.DecodeRuneInString(s[j:])
				if !unicode.IsLetter(r2) {
					break
				}
				j += n
			}
		case unicode.IsNumber(r):
		default:
			for j < len(s) {
				r2, n := utf8.DecodeRuneInString(s[j:])
				if unicode.IsSpace(r2) || unicode.IsLetter(r2) || unicode.IsNumber(r2) {
					break
				}
				j += n
			}
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// LearnMerges learns up to max BPE merges from texts, most frequent pair
// first (ties broken by the pair's text, so the result is deterministic),
// on words split into byte symbols with "</w>" on the last, as CLIP's
// tokenizer represents them.
func LearnMerges(texts []string, max int) [][2]string {
	table := byteSymbols()
	counts := map[string]int{}
	for _, t := range texts {
		for _, w := range preTokens(t) {
			counts[w]++
		}
	}
	type word struct {
		syms []string
		n    int
	}
	words := make([]word, 0, len(counts))
	keys := make([]string, 0, len(counts))
	for w := range counts {
		keys = append(keys, w)
	}
	sort.Strings(keys)
	for _, w := range keys {
		b := []byte(w)
		syms := make([]string, len(b))
		for i, c := range b {
			syms[i] = string(table[c])
		}
		syms[len(syms)-1] += "</w>"
		words = append(words, word{syms, counts[w]})
	}
	var merges [][2]string
	for len(merges) < max {
		pairs := map[[2]string]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w.syms); i++ {
				pairs[[2]string{w.syms[i], w.syms[i+1]}] += w.n
			}
		}
		if len(pairs) == 0 {
			break
		}
		var best [2]string
		bestN := 0
		for p, n := range pairs {
			if n > bestN || (n == bestN && p[0]+" "+p[1] < best[0]+" "+best[1]) {
				best, bestN = p, n
			}
		}
		merges = append(merges, best)
		joined := best[0] + best[1]
		for wi := range words {
			s := words[wi].syms
			out := s[:0]
			for i := 0; i < len(s); i++ {
				if i+1 < len(s) && s[i] == best[0] && s[i+1] == best[1] {
					out = append(out, joined)
					i++
					continue
				}
				out = append(out, s[i])
			}
			words[wi].syms = out
		}
	}
	return merges
}

// VocabText is a CLIP-format vocabulary (version line + 48,894 merges) whose
// first merges are learned from texts (at most 8,000) and the rest filler.
func VocabText(texts []string) string {
	learned := LearnMerges(texts, 8000)
	var b strings.Builder
	b.WriteString("#version: 0.2 (litcache demo: merges learned from the demo captions, then filler)\n")
	for _, m := range learned {
		b.WriteString(m[0] + " " + m[1] + "\n")
	}
	// Filler: symbols of the control bytes 0x00-0x1f (U+0100..U+011F), which
	// Clean removes or treats as spaces, merged breadth-first into distinct
	// strings of growing length.
	table := byteSymbols()
	base := make([]string, 32)
	for i := range base {
		base[i] = string(table[i])
	}
	need := clipMerges - len(learned)
	level := base
	for need > 0 {
		var next []string
		for _, left := range level {
			for _, right := range base {
				if need == 0 {
					break
				}
				b.WriteString(left + " " + right + "\n")
				next = append(next, left+right)
				need--
			}
			if need == 0 {
				break
			}
		}
		level = next
	}
	return b.String()
}

// WriteVocab writes VocabText(texts) gzipped to path, as CLIP ships its file.
func WriteVocab(path string, texts []string) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(VocabText(texts))); err != nil {
		return fmt.Errorf("bpe: vocabulary: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("bpe: vocabulary: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("bpe: vocabulary: %w", err)
	}
	return nil
}
