package evaluate

import (
	"fmt"
	"math"

	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/tokenizer"
)

// encodeBatch is how many prompts go through the text tower at once.
const encodeBatch = 256

// TextEncoder is what builds a classifier: a text tower's Encode, ids (B,T)
// to embeddings (B,E), projected and not normalised. *clip.TextTower is one;
// a GPU trainer's tower (tune's per-epoch scoring) is another.
type TextEncoder interface {
	Encode(ids []int32, B, T int) []float32
}

var _ TextEncoder = (*clip.TextTower)(nil)

// ClassEmbeddings builds the zero-shot classifier (K,E): for each class every
// template is filled in (ExpandTemplate), tokenised and encoded, each prompt
// embedding L2-normalised, the class's prompts averaged and the mean
// normalised again — OpenCLIP's build_zero_shot_classifier. contextLen is the
// tokenizer's context (77 for CLIP); each batch is trimmed to its longest
// prompt, which leaves the causal, EOT-pooled output unchanged.
func ClassEmbeddings(text TextEncoder, tok *tokenizer.Tokenizer, classes []inat.Class, templates []string, contextLen int) ([]float32, error) {
	return classEmbeddings(text, tok, classes, templates, contextLen, nil)
}

// classEmbeddings is ClassEmbeddings reporting prompts done to bar (may be nil).
func classEmbeddings(text TextEncoder, tok *tokenizer.Tokenizer, classes []inat.Class, templates []string, contextLen int, bar *progress.Bar) ([]float32, error) {
	if len(templates) == 0 {
		return nil, fmt.Errorf("evaluate: class embeddings: no template")
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("evaluate: class embeddings: no class")
	}
	prompts := make([]string, 0, encodeBatch)
	owner := make([]int, 0, encodeBatch) // class index of each prompt in the batch
	var out []float32                    // (K,E) sums of normalised prompt embeddings
	dim := 0

	flush := func() error {
		if len(prompts) == 0 {
			return nil
		}
		B := len(prompts)
		ids, T := trimmedBatch(tok, prompts, contextLen) // (B,T)
		emb := text.Encode(ids, B, T)                    // (B,E)
		if dim == 0 {
			dim = len(emb) / B
			out = make([]float32, len(classes)*dim)
		}
		for b := 0; b < B; b++ {
			row := emb[b*dim : (b+1)*dim]
			inv := invNorm(row)
			dst := out[owner[b]*dim : (owner[b]+1)*dim]
			for j, x := range row {
				dst[j] += x * inv
			}
		}
		if bar != nil {
			bar.Add(int64(B))
		}
		prompts, owner = prompts[:0], owner[:0]
		return nil
	}

	for ci, c := range classes {
		for _, t := range templates {
			p, err := ExpandTemplate(t, c)
			if err != nil {
				return nil, fmt.Errorf("evaluate: class %d (%s): %w", c.ID, c.Name, err)
			}
			prompts = append(prompts, p)
			owner = append(owner, ci)
			if len(prompts) == encodeBatch {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	for k := range classes {
		NormalizeRows(out[k*dim:(k+1)*dim], 1, dim)
	}
	return out, nil
}

// trimmedBatch tokenises prompts to (B,contextLen) and keeps only the columns
// up to the longest prompt's end-of-text: ids (B,T), T ≤ contextLen.
func trimmedBatch(tok *tokenizer.Tokenizer, prompts []string, contextLen int) ([]int32, int) {
	B := len(prompts)
	full := tok.TokenizeBatch(prompts, contextLen) // (B,contextLen)
	T := 1
	for b := 0; b < B; b++ {
		row := full[b*contextLen : (b+1)*contextLen]
		for t := contextLen - 1; t >= T; t-- {
			if row[t] != 0 {
				T = t + 1
				break
			}
		}
	}
	if T == contextLen {
		return full, T
	}
	ids := make([]int32, B*T)
	for b := 0; b < B; b++ {
		copy(ids[b*T:(b+1)*T], full[b*contextLen:b*contextLen+T])
	}
	return ids, T
}

// invNorm is 1/‖x‖₂ (0 for a zero vector), accumulated in float64.
func invNorm(x []float32) float32 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	if s == 0 {
		return 0
	}
	return float32(1 / math.Sqrt(s))
}

// NormalizeRows L2-normalises each of the n rows of x (n,dim) in place; a zero
// row stays zero.
func NormalizeRows(x []float32, n, dim int) {
	for i := 0; i < n; i++ {
		row := x[i*dim : (i+1)*dim]
		inv := invNorm(row)
		for j := range row {
			row[j] *= inv
		}
	}
}
