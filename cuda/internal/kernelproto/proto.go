// Package kernelproto reads the prototypes of the extern "C" kernels in
// litcache's CUDA sources: each kernel's name and its parameter list, with
// every parameter's C type classified by how it travels to the GPU. The
// typed Go launch wrappers are generated from it (cuda/internal/kernelgen),
// a test checks them against it, and Launch checks untyped arguments with it.
//
// Two forms are recognised, as the sources write them:
//
//	extern "C" __global__ void [__launch_bounds__(...)] NAME(PARAMS) { ... }
//	INSTANTIATE(NAME, (PARAMS_F32), (PARAMS_BF16), (ARGS))   → NAME_f32, NAME_bf16
package kernelproto

import (
	"fmt"
	"regexp"
	"strings"
)

// Kind is how a parameter is passed: a device pointer or a scalar of a width.
type Kind uint8

const (
	// Ptr is any pointer (device memory), 8 bytes.
	Ptr Kind = iota + 1
	// I32 is int (4 bytes, signed).
	I32
	// U32 is unsigned / unsigned int (4 bytes).
	U32
	// I64 is long / long long (8 bytes, signed; LP64).
	I64
	// U64 is unsigned long / size_t (8 bytes).
	U64
	// F32 is float.
	F32
	// F64 is double.
	F64
)

// Size is the parameter's size in bytes.
func (k Kind) Size() int {
	switch k {
	case I32, U32, F32:
		return 4
	default:
		return 8
	}
}

// GoType is the Go type a wrapper takes for the parameter.
func (k Kind) GoType() string {
	return [...]string{"", "uintptr", "int32", "uint32", "int64", "uint64", "float32", "float64"}[k]
}

func (k Kind) String() string { return k.GoType() }

// Param is one kernel parameter.
type Param struct {
	CType string // as written, e.g. "const bf16*"
	Name  string
	Kind  Kind
}

// Kernel is one extern "C" kernel.
type Kernel struct {
	Name   string
	Params []Param
	// Family is the INSTANTIATE name for the _f32/_bf16 pair ("" for a plain kernel).
	Family string
}

// Signature is the prototype as C writes it, e.g. "scale_f32(float* t, long n, float a)".
func (k Kernel) Signature() string {
	ps := make([]string, len(k.Params))
	for i, p := range k.Params {
		ps[i] = strings.TrimSpace(p.CType + " " + p.Name)
	}
	return k.Name + "(" + strings.Join(ps, ", ") + ")"
}

var (
	lineComment  = regexp.MustCompile(`//[^\n]*`)
	blockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	directive    = regexp.MustCompile(`(?m)^[ \t]*#[^\n]*(\\\n[^\n]*)*`)
	externStart  = regexp.MustCompile(`extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\(`)
	instStart    = regexp.MustCompile(`\bINSTANTIATE\s*\(`)
	paramRe      = regexp.MustCompile(`^(.*?)([A-Za-z_][A-Za-z0-9_]*)$`)
)

// Strip removes comments and preprocessor directives (the prelude's
// #define INSTANTIATE is not a kernel).
func Strip(src string) string {
	src = blockComment.ReplaceAllString(src, " ")
	src = lineComment.ReplaceAllString(src, "")
	return directive.ReplaceAllString(src, "")
}

// Parse returns every kernel src defines, in source order.
func Parse(src string) ([]Kernel, error) {
	src = Strip(src)
	var out []Kernel
	for _, m := range externStart.FindAllStringSubmatchIndex(src, -1) {
		name := src[m[2]:m[3]]
		body, _, err := balanced(src, m[1]-1)
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", name, err)
		}
		ps, err := parseParams(body)
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", name, err)
		}
		out = append(out, Kernel{Name: name, Params: ps})
	}
	for _, m := range instStart.FindAllStringIndex(src, -1) {
		inner, _, err := balanced(src, m[1]-1)
		if err != nil {
			return nil, fmt.Errorf("INSTANTIATE at byte %d: %w", m[0], err)
		}
		parts := splitTop(inner)
		if len(parts) != 4 {
			return nil, fmt.Errorf("INSTANTIATE(%.40s...): want 4 arguments (name, f32 params, bf16 params, args), got %d", inner, len(parts))
		}
		fam := strings.TrimSpace(parts[0])
		for i, suffix := range []string{"_f32", "_bf16"} {
			p := strings.TrimSpace(parts[1+i])
			if !strings.HasPrefix(p, "(") || !strings.HasSuffix(p, ")") {
				return nil, fmt.Errorf("INSTANTIATE(%s): parameter list %q is not parenthesised", fam, p)
			}
			ps, err := parseParams(p[1 : len(p)-1])
			if err != nil {
				return nil, fmt.Errorf("kernel %s%s: %w", fam, suffix, err)
			}
			out = append(out, Kernel{Name: fam + suffix, Params: ps, Family: fam})
		}
	}
	return out, nil
}

// balanced returns the text inside the parenthesis opening at src[open].
func balanced(src string, open int) (string, int, error) {
	depth := 0
	for i := open; i < len(src); i++ {
		switch src[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return src[open+1 : i], i, nil
			}
		}
	}
	return "", 0, fmt.Errorf("unbalanced parentheses")
}

// splitTop splits s at commas outside parentheses.
func splitTop(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func parseParams(list string) ([]Param, error) {
	list = strings.TrimSpace(list)
	if list == "" || list == "void" {
		return nil, nil
	}
	var ps []Param
	for _, raw := range splitTop(list) {
		p := strings.Join(strings.Fields(raw), " ")
		p = strings.ReplaceAll(p, "__restrict__", "")
		p = strings.Join(strings.Fields(p), " ")
		m := paramRe.FindStringSubmatch(p)
		if m == nil || strings.TrimSpace(m[1]) == "" {
			return nil, fmt.Errorf("parameter %q has no type and name", raw)
		}
		ctype := strings.TrimSpace(m[1])
		k, err := classify(ctype)
		if err != nil {
			return nil, fmt.Errorf("parameter %q: %w", strings.TrimSpace(raw), err)
		}
		ps = append(ps, Param{CType: ctype, Name: m[2], Kind: k})
	}
	return ps, nil
}

// classify maps a C type to how it is passed. Anything else (a struct by
// value, a bool, a short) is refused: the driver would copy its real size,
// which the Go side could not know.
func classify(ctype string) (Kind, error) {
	if strings.Contains(ctype, "*") {
		return Ptr, nil
	}
	t := strings.TrimSpace(strings.TrimPrefix(ctype, "const "))
	switch t {
	case "int", "int32_t", "signed", "signed int":
		return I32, nil
	case "unsigned", "unsigned int", "uint32_t":
		return U32, nil
	case "long", "long long", "long int", "int64_t", "ptrdiff_t":
		return I64, nil
	case "unsigned long", "unsigned long long", "uint64_t", "size_t":
		return U64, nil
	case "float":
		return F32, nil
	case "double":
		return F64, nil
	}
	return 0, fmt.Errorf("type %q is not a pointer or a 4/8-byte integer or float", ctype)
}
