package tokenizer

import "math"

// merge is one BPE rule: the pair's rank (lower merges first) and the id of
// the symbol it makes.
type merge struct {
	rank int32
	id   int32
}

const noRank = math.MaxInt32

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func (t *Tokenizer) rank(a, b int32) merge {
	return t.ranks.get(pairKey(a, b))
}

// bpe encodes one pre-token (raw UTF-8 bytes) as CLIP's bpe() does: the
// token's bytes become symbols, the last one carrying "</w>"; then, while
// some adjacent pair has a rank, every occurrence of the lowest-ranked pair
// is merged, left to right. Symbols are ids throughout (a merged symbol's id
// stands for its string), so no strings are built. The result is appended
// to dst.
//
// pr[i] holds the rule for the pair (sym[i], sym[i+1]); after a round only
// the pairs touching a new symbol are looked up again, which makes a word
// of n bytes cost O(n) lookups plus O(n) per round instead of O(n) lookups
// per round.
func (t *Tokenizer) bpe(dst []int32, word string) []int32 {
	var symBuf, prBuf [48]int32
	var idBuf [48]int32
	var newBuf [48]bool
	n := len(word)
	sym, pr, pid, fresh := symBuf[:0], prBuf[:0], idBuf[:0], newBuf[:0]
	if n > len(symBuf) {
		sym, pr, pid, fresh = make([]int32, 0, n), make([]int32, 0, n), make([]int32, 0, n), make([]bool, 0, n)
	}
	for i := 0; i < n-1; i++ {
		sym = append(sym, t.byteID[word[i]])
	}
	sym = append(sym, t.byteEndID[word[n-1]])
	for i := 0; i+1 < len(sym); i++ {
		m := t.rank(sym[i], sym[i+1])
		pr, pid = append(pr, m.rank), append(pid, m.id)
	}
	fresh = fresh[:len(sym)]
	for len(sym) > 1 {
		best, at := int32(noRank), -1
		for i, r := range pr {
			if r < best {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		first, second, merged := sym[at], sym[at+1], pid[at]
		// Merge every occurrence left to right, in place (writes never pass reads).
		k := 0
		for i := 0; i < len(sym); {
			if i+1 < len(sym) && sym[i] == first && sym[i+1] == second {
				sym[k], fresh[k] = merged, true
				i += 2
			} else {
				// an untouched pair keeps its rule: carry pr[i] along
				sym[k], fresh[k] = sym[i], false
				if i < len(pr) {
					pr[k], pid[k] = pr[i], pid[i]
				}
				i++
			}
			k++
		}
		sym, fresh = sym[:k], fresh[:k]
		pr, pid = pr[:k-1], pid[:k-1]
		for i := 0; i+1 < len(sym); i++ {
			if fresh[i] || fresh[i+1] {
				m := t.rank(sym[i], sym[i+1])
				pr[i], pid[i] = m.rank, m.id
			}
		}
	}
	return append(dst, sym...)
}
