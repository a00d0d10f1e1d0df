package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/testutil"
	"github.com/litcache/litcache/internal/tokenizer"
	"github.com/litcache/litcache/internal/tokenizer/clipvocab"
)

// tokenizeRef is the part of testdata/tokenizer/clip_bpe_reference.json
// (ids from openai/CLIP's simple_tokenizer wrapped as OpenCLIP's tokenize,
// context 77) that the command is checked against.
type tokenizeRef struct {
	Figure1 []struct {
		Caption string  `json:"caption"`
		IDs     []int32 `json:"ids"`
	} `json:"figure1_captions"`
	Tricky []struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
		BPE  []int32 `json:"bpe"`
	} `json:"tricky"`
	Sampled []struct {
		Caption string  `json:"caption"`
		IDs     []int32 `json:"ids"`
	} `json:"sampled_captions"`
}

// gunzipTo writes the gunzipped text of gz to dst and returns dst.
func gunzipTo(t *testing.T, gz []byte, dst string) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, text, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func formatIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, " ")
}

func TestTokenizeCommand(t *testing.T) {
	raw, err := os.ReadFile(testutil.Testdata(t, "tokenizer/clip_bpe_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref tokenizeRef
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	// The first subtest reads CLIP's built-in vocabulary; the others files
	// given by --vocab or $LITCACHE_VOCAB: the same file gzipped and as
	// plain text (which the command takes too).
	vocab := filepath.Join(t.TempDir(), clipvocab.Name)
	if err := os.WriteFile(vocab, clipvocab.Gzip, 0o644); err != nil {
		t.Fatal(err)
	}
	plain := gunzipTo(t, clipvocab.Gzip, filepath.Join(t.TempDir(), "vocab.txt"))

	// Every reference text that fits on one line (a tricky text holding a
	// newline goes through --json below, with all the others).
	var texts, want, wantBPE []string
	for _, c := range ref.Figure1 {
		texts, want = append(texts, c.Caption), append(want, formatIDs(c.IDs))
		wantBPE = append(wantBPE, "")
	}
	for _, c := range ref.Sampled {
		texts, want = append(texts, c.Caption), append(want, formatIDs(c.IDs))
		wantBPE = append(wantBPE, "")
	}
	for _, c := range ref.Tricky {
		if strings.ContainsAny(c.Text, "\n\r") {
			continue
		}
		texts, want = append(texts, c.Text), append(want, formatIDs(c.IDs))
		wantBPE = append(wantBPE, formatIDs(c.BPE))
	}
	input := strings.Join(texts, "\n") + "\n"

	for _, tc := range []struct {
		name, env string
		args      []string
	}{
		{"stdin, built-in vocabulary", "", nil},
		{"stdin, --vocab gzip", "", []string{"--vocab", vocab}},
		{"stdin, $LITCACHE_VOCAB", plain, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tokenizer.EnvVocab, tc.env)
			out, err := runApp(t, input, append([]string{"tokenize"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(got) != len(want) {
				t.Fatalf("%d lines out for %d in", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("%q:\n got %s\nwant %s", texts[i], got[i], want[i])
				}
			}
		})
	}
	t.Run("input file, no padding", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "texts.txt")
		if err := os.WriteFile(path, []byte(input), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runApp(t, "", "tokenize", "--vocab", plain, "--input", path, "--no-pad", "--quiet")
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		for i := range want {
			if trimmed := strings.TrimRight(want[i], " 0"); got[i] != trimmed {
				t.Errorf("%q:\n got %s\nwant %s", texts[i], got[i], trimmed)
			}
		}
	})
	t.Run("bpe", func(t *testing.T) {
		out, err := runApp(t, input, "tokenize", "--vocab", plain, "--bpe")
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		for i := range wantBPE {
			if wantBPE[i] != "" && got[i] != wantBPE[i] {
				t.Errorf("%q:\n got %s\nwant %s", texts[i], got[i], wantBPE[i])
			}
		}
	})
	t.Run("json lines, every tricky case", func(t *testing.T) {
		var in strings.Builder
		for _, c := range ref.Tricky {
			b, _ := json.Marshal(c.Text)
			in.Write(b)
			in.WriteByte('\n')
		}
		// A line that is not JSON ends the run with an error naming it; the
		// lines before it are printed.
		in.WriteString("not json\n")
		out, err := runApp(t, in.String(), "tokenize", "--vocab", plain, "--json")
		if w := fmt.Sprintf("stdin line %d: not a JSON string", len(ref.Tricky)+1); err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v, want it to say %q", err, w)
		}
		got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(got) != len(ref.Tricky) {
			t.Fatalf("%d lines out for %d in", len(got), len(ref.Tricky))
		}
		for i, c := range ref.Tricky {
			if w := formatIDs(c.IDs); got[i] != w {
				t.Errorf("%q:\n got %s\nwant %s", c.Text, got[i], w)
			}
		}
	})
	t.Run("context", func(t *testing.T) {
		out, err := runApp(t, ref.Figure1[0].Caption+"\n", "tokenize", "--vocab", plain, "--context", "5")
		if err != nil {
			t.Fatal(err)
		}
		if w := formatIDs(append(append([]int32{}, ref.Figure1[0].IDs[:4]...), 49407)) + "\n"; out != w {
			t.Errorf("got %q, want %q", out, w)
		}
	})
}

func TestTokenizeCommandErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing vocab", []string{"tokenize", "--vocab", "/nonexistent/vocab.txt.gz"}, "/nonexistent/vocab.txt.gz"},
		{"bad context", []string{"tokenize", "--context", "0"}, "--context 0"},
		{"both modes", []string{"tokenize", "--bpe", "--no-pad"}, "exclude"},
		{"context with --bpe", []string{"tokenize", "--bpe", "--context", "5"}, "--context does nothing with --bpe"},
		{"quiet without a file", []string{"tokenize", "--quiet"}, "--quiet does nothing without --input"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("LITCACHE_VOCAB", "")
			_, err := runApp(t, "", c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	t.Run("missing vocabulary from the environment", func(t *testing.T) {
		t.Setenv(tokenizer.EnvVocab, "/nonexistent/env-vocab.txt")
		_, err := runApp(t, "x\n", "tokenize")
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/env-vocab.txt") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("missing input", func(t *testing.T) {
		_, err := runApp(t, "", "tokenize", "--input", "/nonexistent/texts.txt")
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/texts.txt") {
			t.Errorf("err = %v", err)
		}
	})
}
