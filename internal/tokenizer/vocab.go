package tokenizer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
)

// The vocabulary file (bpe_simple_vocab_16e6.txt.gz from openai/CLIP) holds
// a version line and then one merge per line, "left right", in rank order.
// CLIP reads merges[1 : 49152-256-2+1] and builds the vocabulary as
//
//	the 256 byte symbols (bytes_to_unicode order), the same with "</w>",
//	one symbol per merge (left+right), "<|startoftext|>", "<|endoftext|>"
//
// so 49408 ids, SOT = 49406 and EOT = 49407.
const numMerges = 49152 - 256 - 2

// bytesToUnicode is CLIP's bytes_to_unicode: printable Latin-1 bytes map to
// themselves, the others to U+0100 onwards, so that every byte has a
// visible, non-space symbol. order lists the bytes in the dictionary's
// insertion order, which fixes their ids.
func bytesToUnicode() (table [256]rune, order [256]byte) {
	var seen [256]bool
	n := 0
	for _, r := range [][2]int{{'!', '~'}, {0xa1, 0xac}, {0xae, 0xff}} {
		for b := r[0]; b <= r[1]; b++ {
			table[b] = rune(b)
			order[n] = byte(b)
			seen[b] = true
			n++
		}
	}
	extra := 0
	for b := 0; b < 256; b++ {
		if !seen[b] {
			table[b] = rune(256 + extra)
			order[n] = byte(b)
			extra++
			n++
		}
	}
	return table, order
}

// readVocab returns the file's text, gunzipped when it is gzip.
func readVocab(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return gunzip(raw)
}

// gunzip returns raw as text, gunzipped first when it is gzip.
func gunzip(raw []byte) (string, error) {
	if len(raw) >= 18 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return "", fmt.Errorf("gunzip: %w", err)
		}
		// The trailer's ISIZE (size mod 2^32) sizes the buffer; a wrong one
		// only costs a regrowth.
		size := int(binary.LittleEndian.Uint32(raw[len(raw)-4:]))
		buf := bytes.NewBuffer(make([]byte, 0, min(size, 64<<20)+1))
		if _, err := io.Copy(buf, zr); err != nil {
			return "", fmt.Errorf("gunzip: %w", err)
		}
		raw = buf.Bytes()
	}
	if !utf8.Valid(raw) {
		return "", fmt.Errorf("not UTF-8 text")
	}
	return string(raw), nil
}

// parseMerges builds the encoder (symbol → id) and the merge table from the
// vocabulary text, exactly as simple_tokenizer.py builds encoder and
// bpe_ranks (a repeated string keeps its last id, as a Python dict does).
func (t *Tokenizer) parseMerges(text string) error {
	lines := strings.Split(text, "\n")
	if len(lines) < numMerges+1 {
		return fmt.Errorf("%d lines, want at least %d (a version line and %d merges)", len(lines), numMerges+1, numMerges)
	}
	lines = lines[1 : numMerges+1]
	table, order := bytesToUnicode()
	vocab := make([]string, 0, 512+numMerges+2)
	for _, b := range order {
		vocab = append(vocab, string(table[b]))
	}
	for _, b := range order {
		vocab = append(vocab, string(table[b])+"</w>")
	}
	merges := make([][2]string, numMerges)
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) != 2 {
			return fmt.Errorf("line %d: %q is not a merge \"left right\"", i+2, line)
		}
		merges[i] = [2]string{f[0], f[1]}
		vocab = append(vocab, f[0]+f[1])
	}
	vocab = append(vocab, sotText, eotText)
	t.encoder = make(map[string]int32, len(vocab))
	for i, v := range vocab {
		t.encoder[v] = int32(i)
	}
	t.decoder = vocab
	for b := 0; b < 256; b++ {
		t.byteID[b] = t.encoder[string(table[b])]
		t.byteEndID[b] = t.encoder[string(table[b])+"</w>"]
		t.symByte[table[b]] = byte(b)
	}
	t.ranks = newPairTable(numMerges)
	for r, m := range merges {
		a, okA := t.encoder[m[0]]
		b, okB := t.encoder[m[1]]
		if !okA || !okB {
			return fmt.Errorf("line %d: merge %q %q of unknown symbols", r+2, m[0], m[1])
		}
		t.ranks.put(pairKey(a, b), merge{rank: int32(r), id: t.encoder[m[0]+m[1]]})
	}
	return nil
}
