// Package tokenizer is CLIP's byte-level BPE tokenizer (openai/CLIP
// simple_tokenizer.py) with OpenCLIP's tokenize wrapping: the same ids as
// the Python tokenizer for the same text, checked case by case against
// testdata/tokenizer/clip_bpe_reference.json.
//
// CLIP's vocabulary, bpe_simple_vocab_16e6.txt.gz, is embedded in the binary
// (package clipvocab, MIT licence of openai/CLIP): CLIP returns a tokenizer
// over it, and Open takes a vocabulary file when one is given.
package tokenizer

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// Special ids and the default context of CLIP's text tower.
const (
	SOT            = 49406 // <|startoftext|>
	EOT            = 49407 // <|endoftext|>
	VocabSize      = 49408
	DefaultContext = 77
)

// maxCacheWords bounds the word cache; past it, new words are encoded
// without being remembered (iNat captions use a few tens of thousands).
const maxCacheWords = 1 << 20

// Tokenizer encodes text to CLIP token ids. It is safe for concurrent use.
type Tokenizer struct {
	encoder   map[string]int32
	decoder   []string
	ranks     pairTable
	byteID    [256]int32 // symbol id of a byte inside a word
	byteEndID [256]int32 // symbol id of a byte ending a word ("</w>")
	symByte   [512]byte  // inverse of bytes_to_unicode (its symbols are < U+0144)

	mu    sync.RWMutex
	cache map[string][]int32 // pre-token → BPE ids
}

// Load reads the BPE vocabulary (bpe_simple_vocab_16e6.txt.gz; gzip or plain text).
func Load(vocabPath string) (*Tokenizer, error) {
	text, err := readVocab(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", vocabPath, err)
	}
	t, err := Parse(text)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", vocabPath, err)
	}
	return t, nil
}

// Parse builds a tokenizer from the vocabulary file's (gunzipped) text.
func Parse(vocabText string) (*Tokenizer, error) {
	t := &Tokenizer{cache: make(map[string][]int32, 4096)}
	if err := t.parseMerges(vocabText); err != nil {
		return nil, fmt.Errorf("vocabulary: %w", err)
	}
	return t, nil
}

// Fresh returns a tokenizer sharing t's vocabulary with an empty word cache
// (for measuring the cost of words seen the first time).
func (t *Tokenizer) Fresh() *Tokenizer {
	return &Tokenizer{
		encoder: t.encoder, decoder: t.decoder, ranks: t.ranks,
		byteID: t.byteID, byteEndID: t.byteEndID, symByte: t.symByte,
		cache: make(map[string][]int32, 4096),
	}
}

// Encode returns the BPE ids of text after CLIP's cleaning, without start
// and end tokens (simple_tokenizer.encode).
func (t *Tokenizer) Encode(text string) []int32 {
	return t.appendEncode(nil, text)
}

// appendEncode appends text's BPE ids to dst.
func (t *Tokenizer) appendEncode(dst []int32, text string) []int32 {
	var s string
	var buf [192]byte
	if len(text) <= len(buf) && plainASCII(text) {
		// Captions are short ASCII: clean into a stack buffer. The string
		// view of it lives only in this call (the cache stores clones).
		b := appendCollapseLowerASCII(buf[:0], text)
		s = unsafe.String(unsafe.SliceData(b), len(b))
	} else {
		s = Clean(text)
	}
	for i := 0; ; {
		start, end, special := nextWord(s, i)
		if start < 0 {
			return dst
		}
		i = end
		word := s[start:end]
		if special {
			if word == sotText {
				dst = append(dst, SOT)
			} else {
				dst = append(dst, EOT)
			}
			continue
		}
		dst = t.appendWord(dst, word)
	}
}

// appendWord appends the BPE ids of one pre-token, through the cache.
func (t *Tokenizer) appendWord(dst []int32, word string) []int32 {
	t.mu.RLock()
	ids, ok := t.cache[word]
	t.mu.RUnlock()
	if ok {
		return append(dst, ids...)
	}
	n := len(dst)
	dst = t.bpe(dst, word)
	ids = append([]int32(nil), dst[n:]...)
	t.mu.Lock()
	if len(t.cache) < maxCacheWords {
		t.cache[strings.Clone(word)] = ids
	}
	t.mu.Unlock()
	return dst
}

// Tokenize is OpenCLIP's tokenize for one text: SOT, the BPE ids, EOT, cut
// to contextLen keeping EOT as the last token, zero padded to contextLen.
// A contextLen below 1 gives an empty slice.
func (t *Tokenizer) Tokenize(text string, contextLen int) []int32 {
	out := make([]int32, max(contextLen, 0))
	t.wrapInto(out, text, nil)
	return out
}

// parallelBatch is the batch size from which TokenizeBatch uses every core.
const parallelBatch = 2048

// TokenizeBatch tokenizes texts into one row-major len(texts)×contextLen
// slice; large batches are split over GOMAXPROCS goroutines.
func (t *Tokenizer) TokenizeBatch(texts []string, contextLen int) []int32 {
	contextLen = max(contextLen, 0)
	out := make([]int32, len(texts)*contextLen)
	rows := func(lo, hi int) {
		var scratch []int32
		for i := lo; i < hi; i++ {
			scratch = t.wrapInto(out[i*contextLen:(i+1)*contextLen], texts[i], scratch)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(texts)/(parallelBatch/2))
	if len(texts) < parallelBatch || workers < 2 {
		rows(0, len(texts))
		return out
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(texts)/workers, (w+1)*len(texts)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows(lo, hi)
		}()
	}
	wg.Wait()
	return out
}

// wrapInto overwrites row (len = context) with the wrapped, padded ids of
// text and returns the scratch buffer for reuse.
func (t *Tokenizer) wrapInto(row []int32, text string, scratch []int32) []int32 {
	ctx := len(row)
	if ctx == 0 {
		return scratch
	}
	scratch = append(scratch[:0], SOT)
	scratch = t.appendEncode(scratch, text)
	scratch = append(scratch, EOT)
	n := copy(row, scratch)
	if len(scratch) > ctx {
		row[ctx-1] = EOT
	}
	clear(row[n:])
	return scratch
}

// Len is the number of tokens text takes with SOT and EOT, before any cut:
// the context it needs to fit whole.
func (t *Tokenizer) Len(text string) int {
	return len(t.appendEncode(nil, text)) + 2
}

// Decode turns ids back into text as simple_tokenizer.decode does: the
// symbols joined, read back as bytes, decoded as UTF-8 (invalid sequences
// become U+FFFD) and "</w>" read as a space. Ids outside the vocabulary are
// skipped; padding zeros decode as "!" as in Python, so cut them first.
func (t *Tokenizer) Decode(ids []int32) string {
	var raw []byte
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.decoder) {
			continue
		}
		for _, r := range t.decoder[id] {
			if int(r) < len(t.symByte) {
				raw = append(raw, t.symByte[r])
			}
		}
	}
	return strings.ReplaceAll(strings.ToValidUTF8(string(raw), "\uFFFD"), "</w>", " ")
}
