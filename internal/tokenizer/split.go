package tokenizer

import "unicode/utf8"

// CLIP splits cleaned text with the pattern
//
//	<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// (case-insensitive) and BPE-encodes each match; whatever matches nothing
// (whitespace) is dropped. splitWords is that findall as a hand-written
// scanner: at each position the alternatives are tried in the pattern's
// order, so it returns the same matches in linear time.

const (
	sotText = "<|startoftext|>"
	eotText = "<|endoftext|>"
)

// nextWord returns the next match in s at or after i, as [start, end), or
// start = -1 when there is none. special is set for the two special tokens.
func nextWord(s string, i int) (start, end int, special bool) {
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '<':
				if hasPrefixAt(s, i, sotText) {
					return i, i + len(sotText), true
				}
				if hasPrefixAt(s, i, eotText) {
					return i, i + len(eotText), true
				}
				return i, otherRun(s, i), false
			case c == '\'':
				if n := contraction(s, i+1); n > 0 {
					return i, i + 1 + n, false
				}
				return i, otherRun(s, i), false
			case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
				return i, letterRun(s, i), false
			case '0' <= c && c <= '9':
				return i, i + 1, false
			case c == ' ' || c >= '\t' && c <= '\r':
				i++
				continue
			default:
				return i, otherRun(s, i), false
			}
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case isLetter(r):
			return i, letterRun(s, i), false
		case isNumber(r):
			return i, i + size, false
		case isSeparator(r):
			i += size
		default:
			return i, otherRun(s, i), false
		}
	}
	return -1, -1, false
}

func hasPrefixAt(s string, i int, p string) bool {
	return len(s)-i >= len(p) && s[i:i+len(p)] == p
}

// contraction is the length of s|t|m|d|re|ve|ll at s[i:] (after an
// apostrophe), 0 when none. Matching is case-insensitive, as the pattern is:
// the long s (U+017F), which lower() keeps, folds like s.
func contraction(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	switch s[i] | 0x20 {
	case 's', 't', 'm', 'd':
		if s[i] >= 'A' {
			return 1
		}
	case 'r', 'v':
		if i+1 < len(s) && s[i+1]|0x20 == 'e' {
			return 2
		}
	case 'l':
		if i+1 < len(s) && s[i+1]|0x20 == 'l' {
			return 2
		}
	}
	if hasPrefixAt(s, i, "ſ") {
		return len("ſ")
	}
	return 0
}

// letterRun is the end of [\p{L}]+ starting at i.
func letterRun(s string, i int) int {
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
				i++
				continue
			}
			return i
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !isLetter(r) {
			return i
		}
		i += size
	}
	return i
}

// otherRun is the end of [^\s\p{L}\p{N}]+ starting at i.
func otherRun(s string, i int) int {
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
				c == ' ' || c >= '\t' && c <= '\r' {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if isLetter(r) || isNumber(r) || isSeparator(r) {
			return i
		}
		i += size
	}
	return i
}
