package tokenizer

import (
	"fmt"
	"sync"

	"github.com/litcache/litcache/internal/tokenizer/clipvocab"
)

// EnvVocab names the environment variable every command reads for the
// vocabulary file when --vocab is not given.
const EnvVocab = "LITCACHE_VOCAB"

// clip is the embedded vocabulary, parsed once per process: the merge table
// takes tens of milliseconds to build, and tokenizers share it read-only.
var clip struct {
	once sync.Once
	tok  *Tokenizer
	err  error
}

// CLIP returns a tokenizer over CLIP's own vocabulary, the copy of
// bpe_simple_vocab_16e6.txt.gz embedded in the binary. Each call returns a
// tokenizer with its own word cache over the one parsed table.
func CLIP() (*Tokenizer, error) {
	clip.once.Do(func() {
		text, err := gunzip(clipvocab.Gzip)
		if err != nil {
			clip.err = fmt.Errorf("tokenizer: embedded %s: %w", clipvocab.Name, err)
			return
		}
		if clip.tok, err = Parse(text); err != nil {
			clip.err = fmt.Errorf("tokenizer: embedded %s: %w", clipvocab.Name, err)
		}
	})
	if clip.err != nil {
		return nil, clip.err
	}
	return clip.tok.Fresh(), nil
}

// Open returns the tokenizer of the vocabulary file at path (gzip or plain
// text, Load), or CLIP's embedded vocabulary when path is empty.
func Open(path string) (*Tokenizer, error) {
	if path == "" {
		return CLIP()
	}
	return Load(path)
}

// Source says which vocabulary Open(path) reads, for logs and reports.
func Source(path string) string {
	if path == "" {
		return "CLIP's " + clipvocab.Name + " (built in)"
	}
	return path
}
