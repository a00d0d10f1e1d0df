package tune

import (
	"fmt"

	"github.com/litcache/litcache/internal/inat"
)

// CaptionSet holds every caption a run uses, tokenised once: tokens (K,T)
// zero padded, and for each image of a source the row of its caption.
type CaptionSet struct {
	tokens []int32 // (K,T)
	T      int
	index  []int32 // (N) caption row of each image
}

// row is caption k's token ids (T).
func (c *CaptionSet) row(k int32) []int32 {
	return c.tokens[int(k)*c.T : int(k+1)*c.T]
}

// longest is the most tokens any caption needs (its end-of-text + 1).
func (c *CaptionSet) longest() int {
	n := 1
	for k := 0; k < len(c.tokens)/max(c.T, 1); k++ {
		n = max(n, captionLen(c.row(int32(k)), n))
	}
	return n
}

// tokenizeFunc turns texts into (len(texts), T) token rows.
type tokenizeFunc func(texts []string, T int) []int32

// classCaptions maps each image of src to its label's class caption in
// classes; a label without a class is an error naming it and where it came from.
func classCaptions(src Source, classes []inat.Class, classTokens []int32, T int, what string) (*CaptionSet, error) {
	rowOf := make(map[int32]int32, len(classes))
	for k, c := range classes {
		rowOf[int32(c.ID)] = int32(k)
	}
	cs := &CaptionSet{tokens: classTokens, T: T, index: make([]int32, src.Len())}
	for i := range cs.index {
		l := src.Label(i)
		k, ok := rowOf[l]
		if !ok {
			return nil, fmt.Errorf("tune: %s image %d has label %d, which is not a class of the classes file", what, i, l)
		}
		cs.index[i] = k
	}
	return cs, nil
}

// cacheCaptions tokenises the distinct captions stored with src's images.
func cacheCaptions(src Source, tokenize tokenizeFunc, T int, what string) (*CaptionSet, error) {
	if c, ok := src.(interface{ CheckCaptions() error }); ok {
		if err := c.CheckCaptions(); err != nil {
			return nil, fmt.Errorf("tune: %s captions: %w", what, err)
		}
	}
	rowOf := map[string]int32{}
	var texts []string
	cs := &CaptionSet{T: T, index: make([]int32, src.Len())}
	for i := range cs.index {
		c := src.Caption(i)
		if c == "" {
			return nil, fmt.Errorf("tune: %s image %d has no cached caption (use captions from the classes file)", what, i)
		}
		k, ok := rowOf[c]
		if !ok {
			k = int32(len(texts))
			rowOf[c] = k
			texts = append(texts, c)
		}
		cs.index[i] = k
	}
	cs.tokens = tokenize(texts, T)
	return cs, nil
}
