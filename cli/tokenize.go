package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/tokenizer"
)

func tokenizeCommand() *cli.Command {
	return &cli.Command{
		Name:  "tokenize",
		Usage: "turn text into CLIP token ids, one input line per output line",
		UsageText: `litcache tokenize [--vocab FILE] [--context 77] [--input FILE] [--no-pad | --bpe]
echo "A photo of the Pine White Insects Neophasia menapia" | litcache tokenize`,
		Description: `Reads one text per line (stdin, or --input FILE) and prints its token ids,
space separated, one line per input line, exactly as OpenCLIP's tokenize does:
CLIP's text cleaning and BPE, the start token 49406, the ids, the end token
49407, cut to --context keeping the end token last, zeros up to --context.

  --no-pad   stop each line at the end token (no zero padding)
  --bpe      print the BPE ids alone, without start/end tokens, cut or padding
  --json     each input line is a JSON string ("two\nlines"), for texts
             holding newlines

With --input, progress (lines done, rate) goes to stderr; --quiet hides it.

The vocabulary is CLIP's bpe_simple_vocab_16e6.txt.gz (from openai/CLIP, MIT
licence), built into the binary; --vocab or $LITCACHE_VOCAB reads another
file in its format (gzip or plain text).

Example:
   printf 'A photo of the Oakmoss Fungi Evernia prunastri\n' | \
       litcache tokenize --no-pad
   49406 320 1125 539 518 6010 12815 27837 888 3098 29029 64 27795 49407`,
		Flags: []cli.Flag{
			vocabFlag(""),
			&cli.IntFlag{Name: "context", Value: tokenizer.DefaultContext, Usage: "context length: ids per output line"},
			&cli.StringFlag{Name: "input", Usage: "read texts from this file instead of stdin"},
			&cli.BoolFlag{Name: "no-pad", Usage: "end each line at the end-of-text token"},
			&cli.BoolFlag{Name: "bpe", Usage: "print the BPE ids only (no start/end tokens, no cut, no padding)"},
			&cli.BoolFlag{Name: "json", Usage: "read each input line as a JSON string"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress on stderr"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if err := checkDependencies(c,
				dependency{"context", !c.Bool("bpe"), "with --bpe (which neither cuts nor pads)"},
				dependency{"quiet", c.String("input") != "", "without --input (progress is shown for a file only)"},
			); err != nil {
				return err
			}
			return runTokenize(c.App.Reader, c.App.Writer, tokenizeOptions{
				vocab: vocabPath(c), context: c.Int("context"), input: c.String("input"),
				noPad: c.Bool("no-pad"), bpe: c.Bool("bpe"), json: c.Bool("json"), quiet: c.Bool("quiet"),
			})
		},
	}
}

type tokenizeOptions struct {
	vocab, input string
	context      int
	noPad, bpe   bool
	json, quiet  bool
}

func runTokenize(stdin io.Reader, stdout io.Writer, o tokenizeOptions) error {
	if o.context < 1 {
		return fmt.Errorf("tokenize: --context %d must be at least 1", o.context)
	}
	if o.noPad && o.bpe {
		return errors.New("tokenize: --no-pad and --bpe exclude each other")
	}
	if o.vocab != "" {
		if _, err := os.Stat(o.vocab); err != nil {
			return fmt.Errorf("tokenize: --vocab: %w", err)
		}
	}
	in, name := stdin, "stdin"
	var bar *progress.Bar
	if o.input != "" {
		f, err := os.Open(o.input)
		if err != nil {
			return fmt.Errorf("tokenize: --input: %w", err)
		}
		defer f.Close()
		in, name = f, o.input
	}
	tok, err := tokenizer.Open(o.vocab)
	if err != nil {
		return fmt.Errorf("tokenize: --vocab: %w", err)
	}
	if o.input != "" {
		bar = progress.New("tokenize "+filepath.Base(o.input), 0, progress.Options{Unit: "lines", Quiet: o.quiet})
		defer bar.Finish()
	}
	if in == nil {
		in = os.Stdin
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	w := bufio.NewWriterSize(stdout, 1<<16)
	var line []byte
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		if o.json {
			if err := json.Unmarshal(sc.Bytes(), &text); err != nil {
				w.Flush() // the lines before stay usable
				return fmt.Errorf("tokenize: %s line %d: not a JSON string: %w", name, n, err)
			}
		}
		text = strings.ToValidUTF8(text, "\uFFFD")
		var ids []int32
		if o.bpe {
			ids = tok.Encode(text)
		} else {
			ids = tok.Tokenize(text, o.context)
			if o.noPad {
				end := len(ids)
				for end > 0 && ids[end-1] == 0 {
					end--
				}
				ids = ids[:end]
			}
		}
		line = line[:0]
		for i, id := range ids {
			if i > 0 {
				line = append(line, ' ')
			}
			line = strconv.AppendInt(line, int64(id), 10)
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return fmt.Errorf("tokenize: write: %w", err)
		}
		if bar != nil {
			bar.Add(1)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("tokenize: %s: %w", name, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("tokenize: write: %w", err)
	}
	return nil
}
