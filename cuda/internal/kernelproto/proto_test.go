package kernelproto

import (
	"reflect"
	"testing"
)

const sample = `
// a comment with extern "C" __global__ void fake(int x) inside
#define INSTANTIATE(name, a, b, args) \
    extern "C" __global__ void name##_f32 a { } \
    extern "C" __global__ void name##_bf16 b { }
extern "C" __global__ void plain(float* __restrict__ y, const unsigned char* src,
                                 long n, int c, unsigned u, float eps) {
    /* extern "C" __global__ void hidden(long q) */
}
extern "C" __global__ void __launch_bounds__(128, 1) bounded(double* d, size_t n) {}
INSTANTIATE(scale,
            (float* t, long n, float a),
            (bf16* t, long n, float a), (t, n, a))
`

func TestParse(t *testing.T) {
	ks, err := Parse(sample)
	if err != nil {
		t.Fatal(err)
	}
	type sig struct {
		name, family string
		kinds        []Kind
		names        []string
	}
	var got []sig
	for _, k := range ks {
		s := sig{name: k.Name, family: k.Family}
		for _, p := range k.Params {
			s.kinds = append(s.kinds, p.Kind)
			s.names = append(s.names, p.Name)
		}
		got = append(got, s)
	}
	want := []sig{
		{"plain", "", []Kind{Ptr, Ptr, I64, I32, U32, F32}, []string{"y", "src", "n", "c", "u", "eps"}},
		{"bounded", "", []Kind{Ptr, U64}, []string{"d", "n"}},
		{"scale_f32", "scale", []Kind{Ptr, I64, F32}, []string{"t", "n", "a"}},
		{"scale_bf16", "scale", []Kind{Ptr, I64, F32}, []string{"t", "n", "a"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", got, want)
	}
	if s := ks[0].Signature(); s != "plain(float* y, const unsigned char* src, long n, int c, unsigned u, float eps)" {
		t.Errorf("signature %q", s)
	}
}

func TestParseRefusesUnknownTypes(t *testing.T) {
	for _, src := range []string{
		`extern "C" __global__ void f(bool b) {}`,
		`extern "C" __global__ void f(short s) {}`,
		`extern "C" __global__ void f(float4 v) {}`,
		`extern "C" __global__ void f(int) {}`,
		`INSTANTIATE(g, (float* x), (bf16* x))`,
		`extern "C" __global__ void f(int x {}`,
	} {
		if _, err := Parse(src); err == nil {
			t.Errorf("%s: want an error", src)
		}
	}
}

func TestSizes(t *testing.T) {
	for k, want := range map[Kind]int{Ptr: 8, I32: 4, U32: 4, I64: 8, U64: 8, F32: 4, F64: 8} {
		if k.Size() != want {
			t.Errorf("%v: size %d, want %d", k, k.Size(), want)
		}
	}
}

// FuzzParse: any text parses to kernels or an error, never a panic.
func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add(`INSTANTIATE(x, (int a), (int a), (a))`)
	f.Add(`extern "C" __global__ void k(`)
	f.Fuzz(func(t *testing.T, src string) {
		ks, err := Parse(src)
		if err != nil {
			return
		}
		for _, k := range ks {
			for _, p := range k.Params {
				if p.Kind == 0 || p.Name == "" {
					t.Fatalf("%s: parameter %+v", k.Name, p)
				}
			}
		}
	})
}
