package tokenizer

import "math"

// merge is one BPE rule: the pair's rank (lower merges first) and the id of
// the symbol it makes.
type merge struct {
	rank int32
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// bpe encodes one pre-token (raw UTF-8 bytes) as CLIP's bpe() does: the
// token's bytes become symbols, the last one carrying "</w>"; then, while
// some adjacent pair has a rank, every occurrence of the lowest-ranked pair
// is merged, left to right. Symbols are ids throughout (a merged symbol's id
// stands for its string), so no strings are built. The result is appended
// to dst.
func (t *Tokenizer) bpe(dst []int32, word string) []int32 {
	var buf [32]int32
	sym := buf[:0]
	for i := 0; i < len(word)-1; i++ {
		sym = append(sym, t.byteID[word[i]])
	}
	sym = append(sym, t.byteEndID[word[len(word)-1]])
	for len(sym) > 1 {
		best, at := merge{rank: math.MaxInt32}, -1
		for i := 0; i+1 < len(sym); i++ {
			if m, ok := t.ranks[pairKey(sym[i], sym[i+1])]; ok && m.rank < best.rank {
				best, at = m, i
			}
		}
		if at < 0 {
			break
		}
		first, second := sym[at], sym[at+1]
		out := sym[:0]
		for i := 0; i < len(sym); {
			if i+1 < len(sym) && sym[i] == first && sym[i+1] == second {
				out = append(out, best.id)
				i += 2
				continue
			}
			out = append(out, sym[i])
			i++
		}
		sym = out
	}
	return append(dst, sym...)
}
