package half

import (
	"math"
	"testing"
)

func TestHalfConversions(t *testing.T) {
	cases := []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, // rounds up to inf
		{float32(math.Inf(-1)), 0xfc00}, {6.103515625e-05, 0x0400}, // smallest normal
		{5.960464477539063e-08, 0x0001},                 // smallest subnormal
		{2.98e-08, 0x0000},                              // below half of it: zero
		{1.0009765625, 0x3c01}, {1.00048828125, 0x3c00}, // tie to even
		{0.333251953125, 0x3555},
	}
	for _, c := range cases {
		if got := F32ToF16(c.f); got != c.h {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	// Every finite half survives half → float32 → half.
	for h := 0; h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			if f := F16ToF32(uint16(h)); !math.IsNaN(float64(f)) {
				t.Fatalf("%#04x: NaN became %g", h, f)
			}
			continue
		}
		if got := F32ToF16(F16ToF32(uint16(h))); got != uint16(h) {
			t.Fatalf("%#04x → %g → %#04x", h, F16ToF32(uint16(h)), got)
		}
	}
	if got := F32ToBF16(1.00390625); got != 0x3f80 { // tie to even
		t.Errorf("bf16 tie: %#04x", got)
	}
	if got := F32ToBF16(1.01171875); got != 0x3f82 { // 1+3/256 ties up to even
		t.Errorf("bf16 tie up: %#04x", got)
	}
	if f := BF16ToF32(F32ToBF16(float32(math.NaN()))); !math.IsNaN(float64(f)) {
		t.Error("bf16 NaN lost")
	}
}

func TestF16Exhaustive(t *testing.T) {
	t.Run("every half round-trips", func(t *testing.T) {
		for h := 0; h < 1<<16; h++ {
			f := F16ToF32(uint16(h))
			if math.IsNaN(float64(f)) {
				if F32ToF16(f)&0x7c00 != 0x7c00 || F32ToF16(f)&0x3ff == 0 {
					t.Fatalf("NaN %#x → %#x", h, F32ToF16(f))
				}
				continue
			}
			if back := F32ToF16(f); back != uint16(h) {
				t.Fatalf("%#x → %v → %#x", h, f, back)
			}
		}
	})
	t.Run("nearest, ties to even", func(t *testing.T) {
		// Between consecutive finite positive halves a and b, a float just
		// below the midpoint goes to a, just above to b, the midpoint to the even one.
		for h := uint16(0); h < 0x7bff; h++ {
			a, b := float64(F16ToF32(h)), float64(F16ToF32(h+1))
			mid := float32((a + b) / 2)
			below := math.Nextafter32(mid, -1)
			above := math.Nextafter32(mid, float32(math.Inf(1)))
			if F32ToF16(below) != h || F32ToF16(above) != h+1 {
				t.Fatalf("h %#x: below→%#x above→%#x", h, F32ToF16(below), F32ToF16(above))
			}
			even := h
			if h&1 == 1 {
				even = h + 1
			}
			if F32ToF16(mid) != even {
				t.Fatalf("h %#x: midpoint → %#x, want %#x", h, F32ToF16(mid), even)
			}
		}
	})
	t.Run("specials", func(t *testing.T) {
		for _, tc := range []struct {
			f    float32
			want uint16
		}{
			{0, 0}, {float32(math.Copysign(0, -1)), 0x8000}, {1, 0x3c00}, {-2, 0xc000},
			{65504, 0x7bff}, {65520, 0x7c00}, {1e9, 0x7c00}, {float32(math.Inf(-1)), 0xfc00},
			{1e-9, 0}, {5.960464477539063e-08, 1},
		} {
			if got := F32ToF16(tc.f); got != tc.want {
				t.Errorf("%v → %#x, want %#x", tc.f, got, tc.want)
			}
		}
	})
}

func TestF16ToF32sMatchesScalar(t *testing.T) {
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	dst := F16ToF32s(make([]float32, len(src)), src)
	for i, h := range src {
		want := F16ToF32(h)
		if math.Float32bits(dst[i]) != math.Float32bits(want) {
			t.Fatalf("%#04x: table %g, scalar %g", h, dst[i], want)
		}
	}
	back := F32ToF16s(make([]uint16, 3), []float32{1, -2, 65504})
	if back[0] != 0x3c00 || back[1] != 0xc000 || back[2] != 0x7bff {
		t.Fatalf("F32ToF16s: %#04x", back)
	}
}

func TestBF16(t *testing.T) {
	for _, c := range []struct {
		in   float32
		want uint16
	}{
		{0, 0}, {1, 0x3f80}, {-2, 0xc000}, {float32(math.Inf(1)), 0x7f80}, {3.0e38, 0x7f62},
	} {
		if got := F32ToBF16(c.in); got != c.want {
			t.Errorf("F32ToBF16(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
}

func BenchmarkF16ToF32s(b *testing.B) {
	src := make([]uint16, 768*1024)
	for i := range src {
		src[i] = uint16(i * 7)
	}
	dst := make([]float32, len(src))
	b.SetBytes(int64(2 * len(src)))
	for i := 0; i < b.N; i++ {
		F16ToF32s(dst, src)
	}
}
