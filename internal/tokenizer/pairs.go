package tokenizer

// pairTable maps a symbol pair to its merge rule: open addressing with
// linear probing over a power-of-two table at most half full. It is built
// once and only read afterwards, so concurrent lookups need no lock; it is
// about twice as fast as a Go map for these 64-bit keys.
type pairTable struct {
	keys  []uint64 // pairKey+1; 0 marks an empty slot
	vals  []merge
	mask  uint64
	count int
}

func newPairTable(n int) pairTable {
	size := 1
	for size < 2*n {
		size <<= 1
	}
	return pairTable{keys: make([]uint64, size), vals: make([]merge, size), mask: uint64(size - 1)}
}

func hashPair(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	return k
}

// put sets the rule of key, replacing an earlier one (a repeated merge
// keeps its last rank, as a Python dict does).
func (p *pairTable) put(key uint64, m merge) {
	stored := key + 1
	for i := hashPair(key) & p.mask; ; i = (i + 1) & p.mask {
		switch p.keys[i] {
		case 0:
			p.keys[i], p.vals[i] = stored, m
			p.count++
			return
		case stored:
			p.vals[i] = m
			return
		}
	}
}

// get returns the rule of key, or a rule of rank noRank when there is none.
func (p *pairTable) get(key uint64) merge {
	stored := key + 1
	for i := hashPair(key) & p.mask; ; i = (i + 1) & p.mask {
		switch p.keys[i] {
		case stored:
			return p.vals[i]
		case 0:
			return merge{rank: noRank}
		}
	}
}
