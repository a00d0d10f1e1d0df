package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/litcache/litcache/internal/testutil"
)

// reference is testdata/tokenizer/clip_bpe_reference.json: token ids from
// openai/CLIP's simple_tokenizer with bpe_simple_vocab_16e6.txt.gz, wrapped as
// OpenCLIP's tokenize does (SOT 49406, ids, EOT 49407, cut to context 77
// keeping EOT last, zero padded). Cleaning as CLIP: ftfy (curly quotes,
// NFC), HTML unescaped twice, whitespace collapsed and trimmed, lower-cased.
// figure1_captions: the paper's Figure 1 captions; tricky: edge cases, with
// "bpe" the ids without wrapping; sampled_captions: 200 iNat2021 captions.
type reference struct {
	ContextLength int `json:"context_length"`
	SOT           int `json:"sot"`
	EOT           int `json:"eot"`
	Figure1       []struct {
		ID      int     `json:"id"`
		Caption string  `json:"caption"`
		IDs     []int32 `json:"ids"`
	} `json:"figure1_captions"`
	Tricky []struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
		BPE  []int32 `json:"bpe"`
	} `json:"tricky"`
	Sampled []struct {
		ID      int     `json:"id"`
		Caption string  `json:"caption"`
		IDs     []int32 `json:"ids"`
	} `json:"sampled_captions"`
}

func loadReference(tb testing.TB) reference {
	tb.Helper()
	b, err := os.ReadFile(testutil.Testdata(tb, "tokenizer/clip_bpe_reference.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		tb.Fatal(err)
	}
	return ref
}

// loadTokenizer returns a tokenizer over CLIP's embedded vocabulary with an
// empty word cache; the vocabulary is parsed once per test binary (parsing
// dominates the tests' time under -race).
func loadTokenizer(tb testing.TB) *Tokenizer {
	tb.Helper()
	tok, err := CLIP()
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestReferenceIDs(t *testing.T) {
	ref := loadReference(t)
	if ref.SOT != SOT || ref.EOT != EOT || ref.ContextLength != DefaultContext {
		t.Fatalf("reference constants %d %d %d", ref.SOT, ref.EOT, ref.ContextLength)
	}
	tok := loadTokenizer(t)
	t.Run("figure1", func(t *testing.T) {
		for _, c := range ref.Figure1 {
			if got := tok.Tokenize(c.Caption, ref.ContextLength); !reflect.DeepEqual(got, c.IDs) {
				t.Errorf("%q:\n got %v\nwant %v", c.Caption, trim(got), trim(c.IDs))
			}
		}
	})
	t.Run("tricky", func(t *testing.T) {
		for _, c := range ref.Tricky {
			name := c.Text
			if len(name) > 40 {
				name = name[:40]
			}
			t.Run(name, func(t *testing.T) {
				if got := tok.Encode(c.Text); !reflect.DeepEqual(got, c.BPE) && !(len(got) == 0 && len(c.BPE) == 0) {
					t.Errorf("Encode(%q):\n got %v\nwant %v", c.Text, got, c.BPE)
				}
				if got := tok.Tokenize(c.Text, ref.ContextLength); !reflect.DeepEqual(got, c.IDs) {
					t.Errorf("Tokenize(%q):\n got %v\nwant %v", c.Text, trim(got), trim(c.IDs))
				}
			})
		}
	})
	t.Run("sampled", func(t *testing.T) {
		texts := make([]string, len(ref.Sampled))
		for i, c := range ref.Sampled {
			texts[i] = c.Caption
		}
		batch := tok.TokenizeBatch(texts, ref.ContextLength)
		for i, c := range ref.Sampled {
			if got := batch[i*ref.ContextLength : (i+1)*ref.ContextLength]; !reflect.DeepEqual(got, c.IDs) {
				t.Errorf("%q:\n got %v\nwant %v", c.Caption, trim(got), trim(c.IDs))
			}
		}
	})
}

func trim(ids []int32) []int32 {
	n := len(ids)
	for n > 0 && ids[n-1] == 0 {
		n--
	}
	return ids[:n]
}

func TestWrapping(t *testing.T) {
	tok := loadTokenizer(t)
	long := strings.Repeat("the ", 100)
	cases := []struct {
		name string
		text string
		ctx  int
		want []int32
	}{
		{"empty", "", 4, []int32{SOT, EOT, 0, 0}},
		{"fits exactly", "a photo", 4, []int32{SOT, 320, 1125, EOT}},
		{"cut keeps EOT", "a photo of", 4, []int32{SOT, 320, 1125, EOT}},
		{"context 2", "a photo", 2, []int32{SOT, EOT}},
		{"context 1", "a", 1, []int32{EOT}},
		{"context 0", "a", 0, []int32{}},
		{"negative context", "a", -3, []int32{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := tok.Tokenize(c.text, c.ctx); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	t.Run("long", func(t *testing.T) {
		got := tok.Tokenize(long, DefaultContext)
		if got[0] != SOT || got[76] != EOT || got[75] != 518 {
			t.Errorf("got %v", got)
		}
		if n := tok.Len(long); n != 102 {
			t.Errorf("Len = %d, want 102", n)
		}
	})
}

func TestDecode(t *testing.T) {
	tok := loadTokenizer(t)
	for _, text := range []string{"a photo of the buff-tailed coronet", "café ñandú 日本語 🐦", "don't"} {
		if got := strings.TrimSpace(tok.Decode(tok.Encode(text))); got != strings.ReplaceAll(text, "-", " - ") && got != text {
			// CLIP's decode puts a space after every word-final symbol, so
			// punctuation runs come back spaced: compare without spaces.
			if strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(text, " ", "") {
				t.Errorf("Decode(Encode(%q)) = %q", text, got)
			}
		}
	}
	if got := tok.Decode([]int32{SOT, 320, EOT}); got != "<|startoftext|>a <|endoftext|>" {
		t.Errorf("special tokens decode as %q", got)
	}
}

// TestBatchParallel checks that a batch large enough to be split over
// goroutines gives the rows one at a time would.
func TestBatchParallel(t *testing.T) {
	ref := loadReference(t)
	tok := loadTokenizer(t)
	var texts []string
	for len(texts) < 3*parallelBatch {
		for _, c := range ref.Sampled {
			texts = append(texts, c.Caption)
		}
	}
	got := tok.TokenizeBatch(texts, 32)
	for i, text := range texts {
		if row := got[i*32 : (i+1)*32]; !reflect.DeepEqual(row, tok.Tokenize(text, 32)) {
			t.Fatalf("row %d differs", i)
		}
	}
}

func TestConcurrent(t *testing.T) {
	ref := loadReference(t)
	tok := loadTokenizer(t)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range ref.Sampled[:50] {
				if got := tok.Tokenize(c.Caption, ref.ContextLength); !reflect.DeepEqual(got, c.IDs) {
					t.Errorf("%q differs under concurrency", c.Caption)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestBadVocabulary(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content, want string
	}{
		{"too short", "#version\na b\n", "lines, want at least"},
		{"bad merge", "#version\n" + strings.Repeat("a b c\n", numMerges), `is not a merge`},
		{"unknown symbol", "#version\n" + strings.Repeat("ab cd\n", numMerges), "unknown symbols"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := dir + "/" + strings.ReplaceAll(c.name, " ", "_")
			if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("err = %v, want it to name the file and say %q", err, c.want)
			}
		})
	}
	if _, err := Load(dir + "/missing.txt.gz"); err == nil || !strings.Contains(err.Error(), "missing.txt.gz") {
		t.Errorf("missing file: %v", err)
	}
}

// TestRegexReference compares with ids that openai/CLIP's simple_tokenizer
// (testdata/clip_ref.py: the original encode with ftfy.fix_text reduced to
// NFC, run under Python 3.11.7 and regex 2026.5.9) gave for 600 random
// strings drawn from characters ftfy leaves alone: letters of many scripts,
// combining marks, digits, punctuation, emoji, the special tokens and HTML
// entities. It pins the pre-token classes (including the code points newer
// Unicode adds), Python's lower() and html.unescape, and the BPE.
func TestRegexReference(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "regex_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			Text string  `json:"text"`
			BPE  []int32 `json:"bpe"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) != 600 {
		t.Fatalf("%d cases", len(ref.Cases))
	}
	tok := loadTokenizer(t)
	for _, c := range ref.Cases {
		if got := tok.Encode(c.Text); !reflect.DeepEqual(got, c.BPE) && !(len(got) == 0 && len(c.BPE) == 0) {
			t.Errorf("%q (cleaned %q):\n got %v\nwant %v", c.Text, Clean(c.Text), got, c.BPE)
		}
	}
}
