package tokenizer

import (
	"testing"

	"github.com/litcache/litcache/internal/tokenizer/clipvocab"
)

func referenceCaptions(tb testing.TB) []string {
	ref := loadReference(tb)
	var texts []string
	for _, c := range ref.Figure1 {
		texts = append(texts, c.Caption)
	}
	for _, c := range ref.Sampled {
		texts = append(texts, c.Caption)
	}
	return texts
}

// BenchmarkTokenizeWarm is the steady state of a training run: every word
// of the captions is in the cache. One op is one caption.
func BenchmarkTokenizeWarm(b *testing.B) {
	tok := loadTokenizer(b)
	texts := referenceCaptions(b)
	tok.TokenizeBatch(texts, DefaultContext)
	row := make([]int32, DefaultContext)
	var scratch []int32
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(row)
		scratch = tok.wrapInto(row, texts[i%len(texts)], scratch)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "captions/s")
}

// BenchmarkTokenizeCold measures captions whose words are all new: a fresh
// tokenizer per pass over the 206 captions, so BPE runs for every word.
func BenchmarkTokenizeCold(b *testing.B) {
	tok := loadTokenizer(b)
	texts := referenceCaptions(b)
	row := make([]int32, DefaultContext)
	var scratch []int32
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%len(texts) == 0 {
			b.StopTimer()
			tok = tok.Fresh()
			b.StartTimer()
		}
		clear(row)
		scratch = tok.wrapInto(row, texts[i%len(texts)], scratch)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "captions/s")
}

func BenchmarkClean(b *testing.B) {
	texts := referenceCaptions(b)
	for i := 0; i < b.N; i++ {
		Clean(texts[i%len(texts)])
	}
}

// BenchmarkLoad is the cost of reading CLIP's vocabulary: gunzip and parse
// the embedded file, as CLIP() does once per process.
func BenchmarkLoad(b *testing.B) {
	for i := 0; i < b.N; i++ {
		text, err := gunzip(clipvocab.Gzip)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Parse(text); err != nil {
			b.Fatal(err)
		}
	}
}
