package wds

import (
	"fmt"
	"strconv"
	"strings"
)

// maxExpand bounds a pattern's expansion so that a typo cannot ask for
// billions of names.
const maxExpand = 1 << 20

// ExpandPattern expands webdataset's brace notation: numeric ranges
// "train-{000000..000099}.tar" (zero padding follows the first bound's width)
// and comma lists "{train,val}-{0..3}.tar"; several groups expand as a
// product, left to right. A string without braces is returned as is.
func ExpandPattern(pattern string) ([]string, error) {
	open := strings.IndexByte(pattern, '{')
	if open < 0 {
		if strings.IndexByte(pattern, '}') >= 0 {
			return nil, fmt.Errorf("wds: pattern %q: unmatched '}'", pattern)
		}
		return []string{pattern}, nil
	}
	closeRel := strings.IndexByte(pattern[open:], '}')
	if closeRel < 0 {
		return nil, fmt.Errorf("wds: pattern %q: unclosed '{'", pattern)
	}
	end := open + closeRel
	body := pattern[open+1 : end]
	if strings.IndexByte(body, '{') >= 0 {
		return nil, fmt.Errorf("wds: pattern %q: nested braces", pattern)
	}
	alts, err := expandGroup(body)
	if err != nil {
		return nil, fmt.Errorf("wds: pattern %q: %w", pattern, err)
	}
	rest, err := ExpandPattern(pattern[end+1:])
	if err != nil {
		return nil, err
	}
	if len(alts)*len(rest) > maxExpand {
		return nil, fmt.Errorf("wds: pattern %q: expands to more than %d names", pattern, maxExpand)
	}
	prefix := pattern[:open]
	if strings.IndexByte(prefix, '}') >= 0 {
		return nil, fmt.Errorf("wds: pattern %q: unmatched '}'", pattern)
	}
	out := make([]string, 0, len(alts)*len(rest))
	for _, a := range alts {
		for _, r := range rest {
			out = append(out, prefix+a+r)
		}
	}
	return out, nil
}

// expandGroup expands the inside of one brace group: "A..B" or "a,b,c".
func expandGroup(body string) ([]string, error) {
	if lo, hi, ok := strings.Cut(body, ".."); ok {
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 0 || b < 0 {
			return nil, fmt.Errorf("range {%s}: want non-negative integers", body)
		}
		if b < a {
			return nil, fmt.Errorf("range {%s}: end before start", body)
		}
		if b-a >= maxExpand {
			return nil, fmt.Errorf("range {%s}: more than %d names", body, maxExpand)
		}
		width := len(lo)
		out := make([]string, 0, b-a+1)
		for i := a; i <= b; i++ {
			out = append(out, fmt.Sprintf("%0*d", width, i))
		}
		return out, nil
	}
	if body == "" {
		return nil, fmt.Errorf("empty braces")
	}
	return strings.Split(body, ","), nil
}
