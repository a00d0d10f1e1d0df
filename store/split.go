package store

import (
	"fmt"
	"sort"
	"strings"
)

// The split names readers fall back on by role when a cache holds several.
const (
	SplitTrain = "train" // what training readers (tune, sweep) read
	SplitVal   = "val"   // what evaluating readers (eval, tune's --val-cache, predict) read
)

// SplitRule is the one rule every reader of a cache follows to pick its split
// (SelectSplit), worded for a flag's usage.
const SplitRule = `split to read; default: the cache's only split, or %q when it holds several`

// SelectSplit is how every reader picks the split it reads among the splits
// a cache has: want, when set, must be one of them; when want is empty, the
// cache's only split, or, in a cache holding several, the reader's role
// (SplitTrain or SplitVal) when it has that split. Anything else is an error
// naming the splits there are, so a mixed cache is never read whole by
// accident.
func SelectSplit(have []string, want, role string) (string, error) {
	have = append([]string(nil), have...)
	sort.Strings(have)
	if want != "" {
		for _, h := range have {
			if h == want {
				return want, nil
			}
		}
		if len(have) == 0 {
			return "", fmt.Errorf("store: no split %q: the cache has no finished part", want)
		}
		return "", fmt.Errorf("store: no split %q (the cache has: %s)", want, strings.Join(have, ", "))
	}
	switch len(have) {
	case 0:
		return "", fmt.Errorf("store: the cache has no finished part")
	case 1:
		return have[0], nil
	}
	for _, h := range have {
		if h == role {
			return role, nil
		}
	}
	return "", fmt.Errorf("store: the cache has several splits (%s) and none is %q: choose one with --split", strings.Join(have, ", "), role)
}

// Splits lists the splits of the cache's finished parts, sorted.
func (r *Reader) Splits() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range r.parts {
		if !seen[p.Split] {
			seen[p.Split] = true
			out = append(out, p.Split)
		}
	}
	sort.Strings(out)
	return out
}

// SelectSplit picks the split a reader in role reads (see SelectSplit).
func (r *Reader) SelectSplit(want, role string) (string, error) {
	s, err := SelectSplit(r.Splits(), want, role)
	if err != nil {
		return "", fmt.Errorf("%w (cache %s)", err, r.dir)
	}
	return s, nil
}
