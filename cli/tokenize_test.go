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

// runApp runs litcache with args, stdin as input, and returns stdout.
func runApp(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	app := App()
	var out bytes.Buffer
	app.Reader = strings.NewReader(stdin)
	app.Writer = &out
	app.ErrWriter = &out
	err := app.Run(append([]string{"litcache"}, args...))
	return out.String(), err
}

// gunzipTo writes the gunzipped content of src to dst and returns dst.
func gunzipTo(t *testing.T, src, dst string) string {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
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
	vocab := testutil.SharedData(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	// The subtests after the first read a gunzipped copy (the command takes
	// plain text too), which halves the loading time under -race.
	plain := gunzipTo(t, vocab, filepath.Join(t.TempDir(), "vocab.txt"))

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

	t.Run("stdin", func(t *testing.T) {
		out, err := runApp(t, input, "tokenize", "--vocab", vocab)
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
		{"no vocab", []string{"tokenize"}, "bpe_simple_vocab_16e6.txt.gz from OpenAI CLIP"},
		{"missing vocab", []string{"tokenize", "--vocab", "/nonexistent/vocab.txt.gz"}, "/nonexistent/vocab.txt.gz"},
		{"bad context", []string{"tokenize", "--vocab", "x", "--context", "0"}, "--context 0"},
		{"both modes", []string{"tokenize", "--vocab", "x", "--bpe", "--no-pad"}, "exclude"},
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
	t.Run("missing input", func(t *testing.T) {
		vocab := testutil.SharedData(t, "clip/bpe_simple_vocab_16e6.txt.gz")
		_, err := runApp(t, "", "tokenize", "--vocab", vocab, "--input", "/nonexistent/texts.txt")
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/texts.txt") {
			t.Errorf("err = %v", err)
		}
	})
}
