package bench

import (
	"context"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/litcache/litcache/internal/tokenizer"
)

// Tokenizer times CLIP tokenization (cleaning, BPE, OpenCLIP wrapping to 77)
// of iNat captions on one goroutine, so the figures are per core: the 10,000
// paper-template captions of iNat2021's categories when ../shared/data (or
// $LITCACHE_SHARED_DATA) holds categories.csv, else 10,000 synthetic ones of
// the same shape. "cold" starts every pass with an empty word cache (every
// word goes through BPE), "warm" is the steady state of a training run.
//
// The reference, timed in the same run on the same captions, is the least
// any word-level tokenizer does: strings.Fields, lower-casing and one map
// lookup per word. Rates are per CPU-second of this process (getrusage;
// wall time where that is missing), rounds of both alternate and the best
// of each counts, so load from other processes changes neither much. The goal is ≥ 100,000
// captions/s per core, stated in the note.
var Tokenizer = Bench{
	Name: "tokenizer",
	Help: "CLIP BPE tokenize+wrap of iNat captions/s on one core, cold and warm word cache, vs strings.Fields+map lookup (goal ≥ 100k/s)",
	Run:  runTokenizerBench,
}

const tokenizerGoal = 100_000

// tokenizerDataDir is $LITCACHE_SHARED_DATA, else ../shared/data beside the
// repository holding the working directory (found by its go.mod), else
// beside the working directory.
func tokenizerDataDir() string {
	if dir := os.Getenv("LITCACHE_SHARED_DATA"); dir != "" {
		return dir
	}
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Join("..", "shared", "data")
	}
	for dir := wd; filepath.Dir(dir) != dir; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "data")
		}
	}
	return filepath.Join(wd, "..", "shared", "data")
}

// benchCaptions returns the captions and where they come from.
func benchCaptions() ([]string, string) {
	path := filepath.Join(tokenizerDataDir(), "inat2021", "categories.csv")
	if f, err := os.Open(path); err == nil {
		defer f.Close()
		rows, err := csv.NewReader(f).ReadAll()
		if err == nil && len(rows) > 1 {
			col := map[string]int{}
			for i, h := range rows[0] {
				col[h] = i
			}
			name, common, super := col["name"], col["common_name"], col["supercategory"]
			var caps []string
			for _, r := range rows[1:] {
				s := r[super]
				if s == "Animalia" { // the paper's template leaves the catch-all out
					s = ""
				}
				caps = append(caps, strings.Join(strings.Fields("A photo of the "+r[common]+" "+s+" "+r[name]), " "))
			}
			return caps, fmt.Sprintf("%d iNat2021 captions", len(caps))
		}
	}
	// Synthetic: Latin-looking binomials and English-looking common names.
	rng := rand.New(rand.NewPCG(1, 2))
	syl := []string{"ar", "bo", "cal", "den", "er", "flo", "gy", "hel", "is", "lu", "mon", "nae", "or", "phy", "qua", "ros", "sti", "tus", "ur", "vi", "xan", "zo"}
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(syl[rng.IntN(len(syl))])
		}
		return b.String()
	}
	supers := []string{"Birds", "Insects", "Plants", "Fungi", "Reptiles", "Mammals", "Amphibians", "Arachnids", "Mollusks", "Ray-finned Fishes", ""}
	caps := make([]string, 10_000)
	for i := range caps {
		genus := word(2 + rng.IntN(3))
		caps[i] = fmt.Sprintf("A photo of the %s-%s %s %s %s %s", capitalise(word(2)), word(1+rng.IntN(2)), capitalise(word(2)),
			supers[rng.IntN(len(supers))], capitalise(genus), word(2+rng.IntN(3)))
	}
	return caps, "10000 synthetic captions (no categories.csv in shared data)"
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// benchTokenizer is CLIP's tokenizer: the vocabulary file $LITCACHE_VOCAB
// names, else the one built into the binary.
func benchTokenizer() (*tokenizer.Tokenizer, string, error) {
	path := os.Getenv(tokenizer.EnvVocab)
	tok, err := tokenizer.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("bench: tokenizer: %w", err)
	}
	return tok, tokenizer.Source(path), nil
}

func runTokenizerBench(ctx context.Context, emit func(Figure)) error {
	caps, from := benchCaptions()
	tok, vocab, err := benchTokenizer()
	if err != nil {
		return err
	}
	const ctxLen = tokenizer.DefaultContext
	row := make([]int32, ctxLen*len(caps))

	// Reference: split on whitespace, lower-case, one map lookup per word.
	words := map[string]int32{}
	for _, c := range caps {
		for _, w := range strings.Fields(strings.ToLower(c)) {
			words[w] = int32(len(words))
		}
	}
	var sink int32
	fields := func() {
		for i, c := range caps {
			n := 0
			for _, w := range strings.Fields(strings.ToLower(c)) {
				if n < ctxLen {
					row[i*ctxLen+n] = words[w]
				}
				n++
			}
			sink += row[i*ctxLen]
		}
	}
	pass := func(fresh bool) {
		t := tok
		if fresh {
			t = tok.Fresh()
		}
		// Batches of 1,000 stay on one goroutine (TokenizeBatch spreads
		// larger ones over every core).
		for lo := 0; lo < len(caps); lo += 1000 {
			sink += t.TokenizeBatch(caps[lo:min(lo+1000, len(caps))], ctxLen)[0]
		}
	}
	// Rates are per CPU-second of this process where the OS reports it
	// (so per core, whatever else loads the machine), else per wall second.
	_, useCPU := processCPU()
	clock := func() time.Duration {
		if useCPU {
			d, _ := processCPU()
			return d
		}
		return time.Duration(time.Now().UnixNano())
	}
	// Each measurement repeats its pass 4 times (about 0.1 s of CPU) so that
	// the clock's granularity does not matter.
	const reps = 4
	rate := func(f func()) float64 {
		start := clock()
		for range reps {
			f()
		}
		return float64(reps*len(caps)) / max((clock()-start).Seconds(), 1e-6)
	}
	var ref, cold, warm float64
	pass(false) // fill the cache for the warm passes
	for round := 0; round < 5; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		ref = max(ref, rate(fields))
		cold = max(cold, rate(func() { pass(true) }))
		warm = max(warm, rate(func() { pass(false) }))
	}
	_ = sink
	note := func(v float64) string {
		verdict := "met"
		if v < tokenizerGoal {
			verdict = "NOT met"
		}
		per := "per CPU-second"
		if !useCPU {
			per = "per wall second"
		}
		return fmt.Sprintf("goal %d/s %s; %s; %s, %s", tokenizerGoal, verdict, per, from, vocab)
	}
	emit(Figure{Name: "tokenizer/cold-cache", Value: cold, Unit: "captions/s", RefName: "strings.Fields+map lookup (ceiling)", Ref: ref, HigherIsBetter: true, Note: note(cold)})
	emit(Figure{Name: "tokenizer/warm-cache", Value: warm, Unit: "captions/s", RefName: "strings.Fields+map lookup (ceiling)", Ref: ref, HigherIsBetter: true, Note: note(warm)})
	return nil
}
