package tokenizer

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Clean is CLIP's text cleaning (simple_tokenizer.py: basic_clean, then
// whitespace_clean, then lower): ftfy's fix_text, html.unescape twice,
// whitespace runs collapsed to one space and trimmed, lower-cased.
//
// Of ftfy's fixes, those that change well-formed Unicode are reproduced
// (HTML entities, C1 controls read as Windows-1252, Latin ligatures,
// full-width forms, curly quotes, line breaks, ANSI escapes, control
// characters, NFC, repeated until nothing changes); its mojibake repair
// (fix_encoding: re-decoding text that was decoded with the wrong codec) is
// not, so text such as "schÃ¶n" stays as it is.
func Clean(text string) string {
	if plainASCII(text) {
		return collapseLowerASCII(text)
	}
	t := fixText(text)
	t = pyUnescape(pyUnescape(t))
	return pyLower(collapseSpace(t))
}

// plainASCII reports text on which ftfy and html.unescape are the identity:
// printable ASCII and the whitespace controls ftfy keeps, no '&'.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			if c == '&' {
				return false
			}
			continue
		}
		if c != '\t' && c != '\n' && c != '\r' && c != '\f' {
			return false
		}
	}
	return true
}

func asciiSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// collapseLowerASCII is whitespace_clean + lower for plainASCII text.
func collapseLowerASCII(s string) string {
	return string(appendCollapseLowerASCII(make([]byte, 0, len(s)), s))
}

// appendCollapseLowerASCII appends collapseLowerASCII(s) to b.
func appendCollapseLowerASCII(b []byte, s string) []byte {
	start := len(b)
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if asciiSpace(c) {
			space = true
			continue
		}
		if space && len(b) > start {
			b = append(b, ' ')
		}
		space = false
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// collapseSpace is whitespace_clean: regex.sub(r'\s+', ' ', text).strip().
// The regex module's \s is Unicode White_Space, as unicode.IsSpace; str.strip
// also strips U+001C–U+001F, which ftfy and html.unescape never leave.
func collapseSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// pyLower is Python's str.lower: Unicode full lower-case mapping, which
// differs from Go's simple mapping for U+0130 and the final-sigma context.
func pyLower(s string) string {
	if !strings.ContainsAny(s, "\u0130\u03a3") {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s) + 2)
	for i, r := range rs {
		switch r {
		case 0x130: // İ → i + combining dot above
			b.WriteString("i\u0307")
		case 0x3a3:
			if finalSigma(rs, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma is Unicode's Final_Sigma condition as CPython tests it: a cased
// letter before (skipping case-ignorables) and none after.
func finalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && caseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !cased(rs[j]) {
		return false
	}
	j = i + 1
	for j < len(rs) && caseIgnorable(rs[j]) {
		j++
	}
	return j == len(rs) || !cased(rs[j])
}

func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '^', '`', 0xb7, 0x387, 0x5f4, 0x2018, 0x2019, 0x2024, 0x2027, 0xfe13, 0xfe52, 0xfe55, 0xff07, 0xff0e, 0xff1a:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// fixText is ftfy.fix_text with the default configuration: the text is
// fixed line by line; HTML entities are unescaped only until a line holding
// '<' is seen (ftfy's unescape_html="auto").
func fixText(s string) string {
	var out strings.Builder
	out.Grow(len(s))
	unescape := true
	for len(s) > 0 {
		n := strings.IndexByte(s, '\n') + 1
		if n == 0 {
			n = len(s)
		}
		seg := s[:n]
		s = s[n:]
		if unescape && strings.IndexByte(seg, '<') >= 0 {
			unescape = false
		}
		out.WriteString(fixSegment(seg, unescape))
	}
	return out.String()
}

// fixSegment is ftfy's fix_and_explain: the fixes in ftfy's order, repeated
// until the text no longer changes (bounded, though every loop of real text
// ends in two or three rounds).
func fixSegment(s string, unescape bool) string {
	for round := 0; round < 32; round++ {
		orig := s
		if unescape {
			s = ftfyUnescape(s)
		}
		s = mapRunes(s, fixRune)
		s = removeTerminalEscapes(s)
		s = mapRunes(s, dropControl)
		s = norm.NFC.String(s)
		if s == orig {
			break
		}
	}
	return s
}

// mapRunes applies f to every rune; f returns the replacement and whether
// the rune changes. The string is only rebuilt when something changes.
func mapRunes(s string, f func(r rune, next rune) (string, bool)) string {
	var b *strings.Builder
	for i, r := range s {
		next := rune(-1)
		if j := i + utf8.RuneLen(r); j < len(s) {
			next, _ = utf8.DecodeRuneInString(s[j:])
		}
		rep, changed := f(r, next)
		if b == nil {
			if !changed {
				continue
			}
			b = &strings.Builder{}
			b.Grow(len(s) + 8)
			b.WriteString(s[:i])
		}
		if changed {
			b.WriteString(rep)
		} else {
			b.WriteRune(r)
		}
	}
	if b == nil {
		return s
	}
	return b.String()
}

// fixRune applies, per character and in ftfy's order: fix_c1_controls
// (C1 controls read as Windows-1252), fix_latin_ligatures,
// fix_character_width (full/half-width forms to NFKC), uncurl_quotes and
// fix_line_breaks.
func fixRune(r, next rune) (string, bool) {
	if r >= 0x80 && r <= 0x9f {
		if w := cp1252[r-0x80]; w != 0 {
			r = w
			// the new character goes through the remaining fixes below
			rep, changed := fixRune(r, next)
			if !changed {
				rep = string(r)
			}
			return rep, true
		}
	}
	if lig, ok := ligatures[r]; ok {
		return uncurl(lig), true
	}
	if r == 0x3000 {
		return " ", true
	}
	if r >= 0xff01 && r <= 0xffef {
		if alt := norm.NFKC.String(string(r)); alt != string(r) {
			return uncurl(alt), true
		}
	}
	switch {
	case r == 0x2bc || (r >= 0x2018 && r <= 0x201b):
		return "'", true
	case r >= 0x201c && r <= 0x201f:
		return `"`, true
	case r == '\r':
		if next == '\n' {
			return "", true
		}
		return "\n", true
	case r == 0x2028 || r == 0x2029 || r == 0x85:
		return "\n", true
	}
	return "", false
}

func uncurl(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == 0x2bc || (r >= 0x2018 && r <= 0x201b):
			return '\''
		case r >= 0x201c && r <= 0x201f:
			return '"'
		}
		return r
	}, s)
}

// cp1252 is Windows-1252 for bytes 0x80–0x9F; 0 where the codec leaves the
// control character as it is (ftfy's sloppy-windows-1252).
var cp1252 = [32]rune{
	0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
	0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
}

// ligatures is ftfy's fix_latin_ligatures table.
var ligatures = map[rune]string{
	'Ĳ': "IJ", 'ĳ': "ij", 'ŉ': "ʼn", 'Ǳ': "DZ", 'ǲ': "Dz", 'ǳ': "dz", 'Ǆ': "DŽ", 'ǅ': "Dž", 'ǆ': "dž",
	'Ǉ': "LJ", 'ǈ': "Lj", 'ǉ': "lj", 'Ǌ': "NJ", 'ǋ': "Nj", 'ǌ': "nj",
	'ﬀ': "ff", 'ﬁ': "fi", 'ﬂ': "fl", 'ﬃ': "ffi", 'ﬄ': "ffl", 'ﬅ': "ſt", 'ﬆ': "st",
}

// dropControl is ftfy's remove_control_chars.
func dropControl(r, _ rune) (string, bool) {
	switch {
	case r <= 0x08, r == 0x0b, r >= 0x0e && r <= 0x1f, r == 0x7f,
		r >= 0x206a && r <= 0x206f, r == 0xfeff, r >= 0xfff9 && r <= 0xfffc:
		return "", true
	}
	return "", false
}

// removeTerminalEscapes is ftfy's remove_terminal_escapes: ESC '[' [0-9;]* letter.
func removeTerminalEscapes(s string) string {
	if strings.IndexByte(s, 0x1b) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] == ';' || (s[j] >= '0' && s[j] <= '9')) {
				j++
			}
			if j < len(s) && (s[j]|0x20 >= 'a' && s[j]|0x20 <= 'z') {
				i = j + 1
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// ftfyUnescape is ftfy's unescape_html: only entities matching
// &#?[0-9A-Za-z]{1,24}; are replaced, named ones when HTML5 knows them
// (upper-case spellings of lower-case names too), numeric ones as
// html.unescape does unless that leaves a ';'.
func ftfyUnescape(s string) string {
	if strings.IndexByte(s, '&') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '&' {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i + 1
		if j < len(s) && s[j] == '#' {
			j++
		}
		k := j
		for k < len(s) && k-j < 25 && isAlnum(s[k]) {
			k++
		}
		if k == j || k-j > 24 || k >= len(s) || s[k] != ';' {
			b.WriteByte('&')
			i++
			continue
		}
		ent := s[i : k+1]
		b.WriteString(ftfyEntity(ent))
		i = k + 1
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z'
}

func ftfyEntity(ent string) string {
	if ent[1] == '#' {
		u := pyUnescape(ent)
		if strings.IndexByte(u, ';') >= 0 {
			return ent
		}
		return u
	}
	if ent == "&semi;" { // the one entity whose value ends in ';'
		return ";"
	}
	// A named entity must resolve as a whole: html.UnescapeString of
	// "&name;" consumes all of it exactly when the name (with ';') is known.
	if u := html.UnescapeString(ent); u != ent && !strings.HasSuffix(u, ";") {
		return u
	}
	if low := strings.ToLower(ent); low != ent && strings.ToUpper(ent) == ent {
		if u := html.UnescapeString(low); u != low && !strings.HasSuffix(u, ";") &&
			html.UnescapeString(ent) == ent {
			return strings.ToUpper(u)
		}
	}
	return ent
}

// pyUnescape is Python's html.unescape. Named references go through Go's
// html.UnescapeString (both follow the HTML5 rules and table); numeric
// ones are decoded here because Python drops invalid code points that Go keeps.
func pyUnescape(s string) string {
	if strings.IndexByte(s, '&') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '#' {
			if r, n, ok := numericRef(s[i:]); ok {
				b.WriteString(r)
				i += n
				continue
			}
			b.WriteByte('&')
			i++
			continue
		}
		// Python's named pattern: [^\t\n\f <&#;]{1,32};?
		j := i + 1
		for j < len(s) && j-i-1 < 32 && !strings.ContainsRune("\t\n\f <&#;", rune(s[j])) {
			_, size := utf8.DecodeRuneInString(s[j:])
			j += size
		}
		if j == i+1 {
			b.WriteByte('&')
			i++
			continue
		}
		if j < len(s) && s[j] == ';' {
			j++
		}
		b.WriteString(html.UnescapeString(s[i:j]))
		i = j
	}
	return b.String()
}

// numericRef decodes "&#123;" / "&#x1F;" (';' optional) at the start of s
// as Python's html._replace_charref does; n is the bytes consumed.
func numericRef(s string) (string, int, bool) {
	i := 2
	hex := false
	if i < len(s) && (s[i] == 'x' || s[i] == 'X') {
		hex = true
		i++
	}
	start := i
	var num int64
	for i < len(s) {
		c := s[i]
		var d int64
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case hex && c|0x20 >= 'a' && c|0x20 <= 'f':
			d = int64(c|0x20-'a') + 10
		default:
			goto done
		}
		if hex {
			num = num*16 + d
		} else {
			num = num*10 + d
		}
		if num > 0x10ffff {
			num = 0x110000 // stays "too large" however many digits follow
		}
		i++
	}
done:
	if i == start {
		return "", 0, false
	}
	if i < len(s) && s[i] == ';' {
		i++
	}
	switch {
	case num == 0:
		return "\ufffd", i, true
	case num == 0x0d:
		return "\r", i, true
	case num >= 0x80 && num <= 0x9f:
		if w := cp1252[num-0x80]; w != 0 {
			return string(w), i, true
		}
		return string(rune(num)), i, true
	case num >= 0xd800 && num <= 0xdfff, num > 0x10ffff:
		return "\ufffd", i, true
	case invalidCodepoint(num):
		return "", i, true
	}
	return string(rune(num)), i, true
}

// invalidCodepoint is Python's html._invalid_codepoints.
func invalidCodepoint(n int64) bool {
	switch {
	case n >= 0x1 && n <= 0x8, n == 0xb, n >= 0xe && n <= 0x1f, n >= 0x7f && n <= 0x9f, n >= 0xfdd0 && n <= 0xfdef:
		return true
	}
	return n&0xfffe == 0xfffe && n <= 0x10ffff
}
