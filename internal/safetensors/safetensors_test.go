package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/testutil"
)

// rawFile assembles a file from a header string and a data region.
func rawFile(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func TestRoundTripEveryDType(t *testing.T) {
	f32 := []float32{0, -1.5, 3.25, float32(math.Inf(1)), 1e-7, 65504}
	f64 := []float64{math.Pi, -2, 0, 1e300, math.SmallestNonzeroFloat64, -0.0}
	i32 := []int32{0, -1, math.MaxInt32, math.MinInt32, 7, 49407}
	i64 := []int64{0, -1, math.MaxInt64, math.MinInt64, 1 << 40, 5}
	raw := func(dtype string, b ...byte) Tensor {
		return Tensor{Name: "raw_" + dtype, DType: dtype, Shape: []int{len(b)}, Data: b}
	}
	tensors := []Tensor{
		F32("f32", []int{2, 3}, f32),
		F64("f64", []int{3, 2}, f64),
		F16("f16", []int{6}, f32),
		BF16("bf16", []int{1, 6}, f32),
		I32("i32", []int{6}, i32),
		I64("i64", []int{2, 3}, i64),
		F32("scalar", nil, []float32{2.5}),
		F32("empty", []int{0, 4}, nil),
		raw("U8", 1, 2, 255),
		raw("I8", 0x80, 0x7f),
		raw("BOOL", 0, 1, 1),
	}
	meta := map[string]string{"format": "pt", "note": "round trip"}
	path := filepath.Join(t.TempDir(), "rt.safetensors")
	if err := Write(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Metadata(); !reflect.DeepEqual(got, meta) {
		t.Errorf("metadata = %v, want %v", got, meta)
	}
	if got := len(f.Names()); got != len(tensors) {
		t.Errorf("%d names, want %d", got, len(tensors))
	}
	for _, tn := range tensors {
		t.Run(tn.Name, func(t *testing.T) {
			info, ok := f.Info(tn.Name)
			if !ok {
				t.Fatal("missing")
			}
			want := tn.Shape
			if want == nil {
				want = []int{}
			}
			if info.DType != tn.DType || !reflect.DeepEqual(info.Shape, want) {
				t.Errorf("info = %s %v, want %s %v", info.DType, info.Shape, tn.DType, want)
			}
			b, _, err := f.Bytes(tn.Name)
			if err != nil || string(b) != string(tn.Data) {
				t.Errorf("bytes differ (err %v)", err)
			}
		})
	}
	t.Run("float conversions", func(t *testing.T) {
		for _, name := range []string{"f32", "f16", "bf16"} {
			got, shape, err := f.Float32(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 6 || numElems(TensorInfo{Shape: shape}) != 6 {
				t.Fatalf("%s: %d values, shape %v", name, len(got), shape)
			}
			for i, v := range got {
				// F16 keeps 11 significant bits, BF16 8: relative error ≤ 2^-11, 2^-8;
				// 1e-7 is a subnormal half: absolute error ≤ 2^-25.
				tol := map[string]float64{"f32": 0, "f16": 1.0 / 2048, "bf16": 1.0 / 256}[name]
				abs := map[string]float64{"f16": 0x1p-25}[name]
				d := math.Abs(float64(v) - float64(f32[i]))
				if !(d <= tol*math.Abs(float64(f32[i]))+abs) && !(math.IsInf(float64(v), 1) && math.IsInf(float64(f32[i]), 1)) {
					t.Errorf("%s[%d] = %g, want %g", name, i, v, f32[i])
				}
			}
		}
		got64, _, err := f.Float64("f64")
		if err != nil || !reflect.DeepEqual(got64, f64) {
			t.Errorf("f64 = %v (%v)", got64, err)
		}
		got32, _, err := f.Float32("f64")
		if err != nil || got32[0] != float32(math.Pi) {
			t.Errorf("f64 as f32 = %v (%v)", got32, err)
		}
		up, _, err := f.Float64("f32")
		if err != nil || up[1] != -1.5 {
			t.Errorf("f32 as f64 = %v (%v)", up, err)
		}
		if s, shape, err := f.Float32("scalar"); err != nil || len(s) != 1 || s[0] != 2.5 || len(shape) != 0 {
			t.Errorf("scalar = %v %v (%v)", s, shape, err)
		}
		if e, _, err := f.Float32("empty"); err != nil || len(e) != 0 {
			t.Errorf("empty = %v (%v)", e, err)
		}
	})
	t.Run("int conversions", func(t *testing.T) {
		g32, _, err := f.Int32s("i32")
		if err != nil || !reflect.DeepEqual(g32, i32) {
			t.Errorf("i32 = %v (%v)", g32, err)
		}
		g64, _, err := f.Int64s("i64")
		if err != nil || !reflect.DeepEqual(g64, i64) {
			t.Errorf("i64 = %v (%v)", g64, err)
		}
		w64, _, err := f.Int64s("i32")
		if err != nil || w64[2] != math.MaxInt32 {
			t.Errorf("i32 as i64 = %v (%v)", w64, err)
		}
		if _, _, err := f.Int32s("i64"); !errors.Is(err, ErrDType) || !strings.Contains(err.Error(), "element 2") {
			t.Errorf("i64 out of int32 range: err = %v", err)
		}
		if v, _, err := f.Int32s("raw_I8"); err != nil || !reflect.DeepEqual(v, []int32{-128, 127}) {
			t.Errorf("I8 = %v (%v)", v, err)
		}
		if v, _, err := f.Int64s("raw_U8"); err != nil || !reflect.DeepEqual(v, []int64{1, 2, 255}) {
			t.Errorf("U8 = %v (%v)", v, err)
		}
	})
	t.Run("wrong requests", func(t *testing.T) {
		if _, _, err := f.Float32("i32"); !errors.Is(err, ErrDType) {
			t.Errorf("i32 as float32: %v", err)
		}
		if _, _, err := f.Int32s("f32"); !errors.Is(err, ErrDType) {
			t.Errorf("f32 as int32: %v", err)
		}
		if _, _, err := f.Float32("nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("missing tensor: %v", err)
		}
	})
}

func TestWriteIsAlignedAndAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.safetensors")
	ts := []Tensor{I32("ids", []int{3}, []int32{1, 2, 3}), F64("x", []int{1}, []float64{1}), {Name: "b", DType: "U8", Shape: []int{1}, Data: []byte{9}}}
	if err := Write(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 {
		t.Errorf("header length %d not a multiple of 8", n)
	}
	f, err := FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		size, _ := dtypeSize(info.DType)
		if (8+int64(n)+info.Begin)%int64(size) != 0 {
			t.Errorf("%s at file offset %d not aligned to %d", name, 8+int64(n)+info.Begin, size)
		}
	}
	// A failing write leaves the old file and no temporary behind.
	bad := []Tensor{{Name: "x", DType: "F32", Shape: []int{2}, Data: []byte{1}}}
	if err := Write(path, bad, nil); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("bad tensor: err = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after a failed write, want 1", len(entries))
	}
	if again, _ := os.ReadFile(path); string(again) != string(b) {
		t.Error("failed write changed the file")
	}
}

func TestWriteRejects(t *testing.T) {
	cases := []struct {
		name    string
		tensors []Tensor
		want    string
	}{
		{"duplicate", []Tensor{F32("a", []int{1}, []float32{1}), F32("a", []int{1}, []float32{2})}, "duplicate"},
		{"metadata name", []Tensor{F32("__metadata__", []int{1}, []float32{1})}, "invalid name"},
		{"unknown dtype", []Tensor{{Name: "a", DType: "F128", Shape: []int{1}, Data: make([]byte, 16)}}, "unknown dtype"},
		{"size mismatch", []Tensor{F32("a", []int{2, 2}, []float32{1})}, "needs 16 bytes"},
		{"negative dim", []Tensor{{Name: "a", DType: "U8", Shape: []int{-1}}}, "negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Marshal(c.tensors, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestBadFiles(t *testing.T) {
	data16 := make([]byte, 16)
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	beyond := make([]byte, 8, 20)
	binary.LittleEndian.PutUint64(beyond, 100)
	beyond = append(beyond, "{}{}"...)
	good := rawFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, data16)
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty file", nil, "too short"},
		{"short length", []byte{1, 2, 3}, "too short"},
		{"absurd header length", huge, "exceeds the limit"},
		{"header beyond file", beyond, "runs past the end"},
		{"truncated data", good[:len(good)-3], "data_offsets [0,16] outside the data region of 13 bytes"},
		{"trailing bytes", append(append([]byte{}, good...), 1, 2, 3), "cover 16 bytes but the data region holds 19"},
		{"bad json", rawFile(`{"a":{"dtype":"F32",`, data16), "header JSON"},
		{"not an object", rawFile(`[1,2]`, nil), "does not start with '{'"},
		{"trailing garbage", rawFile(`{} x`, nil), "trailing bytes after the object"},
		{"invalid utf8", rawFile("{\"\xff\":1}", nil), "UTF-8"},
		{"entry not object", rawFile(`{"a":5}`, nil), `entry "a"`},
		{"unknown dtype", rawFile(`{"a":{"dtype":"F12","shape":[4],"data_offsets":[0,16]}}`, data16), "unknown dtype"},
		{"case of keys", rawFile(`{"a":{"DType":"F32","shape":[4],"data_offsets":[0,16]}}`, data16), "unknown dtype"},
		{"missing shape", rawFile(`{"a":{"dtype":"F32","data_offsets":[0,16]}}`, data16), "missing shape"},
		{"three offsets", rawFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,8,16]}}`, data16), "data_offsets must be"},
		{"offset out of range", rawFile(`{"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}`, data16), "outside the data region"},
		{"end before begin", rawFile(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}}`, data16), "outside the data region"},
		{"negative offset", rawFile(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[-4,0]}}`, data16), "outside the data region"},
		{"negative dim", rawFile(`{"a":{"dtype":"U8","shape":[-16],"data_offsets":[0,16]}}`, data16), "negative dimension"},
		{"fractional dim", rawFile(`{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,16]}}`, data16), `entry "a"`},
		{"shape overflow", rawFile(`{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,16]}}`, data16), "overflows"},
		{"size mismatch", rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}`, data16), "needs 12 bytes"},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, data16[:12]), "overlap"},
		{"gap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}`, data16), "gap of 4 bytes"},
		{"bad metadata", rawFile(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromBytes(c.file)
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want ErrFormat mentioning %q", err, c.want)
			}
			// The same through a file on disk, which must name the path.
			path := filepath.Join(t.TempDir(), "bad.safetensors")
			if err := os.WriteFile(path, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = Open(path)
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), path) {
				t.Errorf("Open: err = %v, want ErrFormat naming the path", err)
			}
		})
	}
	t.Run("valid control", func(t *testing.T) {
		if _, err := FromBytes(good); err != nil {
			t.Fatal(err)
		}
		if _, err := FromBytes(rawFile(`{}       `, nil)); err != nil {
			t.Errorf("empty padded header: %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		if _, err := Open(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.safetensors")
	if err := Write(path, []Tensor{F32("a", []int{1}, []float32{1})}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := f.Float32("a"); !errors.Is(err, ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
}

// TestFixtures reads the reference files of testdata/ (written by the Python
// safetensors library; FIXTURES.md) and checks shapes, dtypes and a few values
// against what that README and a plain struct-unpack of the files give.
func TestFixtures(t *testing.T) {
	dir := testutil.FixtureDir(t)
	t.Run("forward", func(t *testing.T) {
		// Shapes and the vocabulary come from the fixture's own config, so
		// that any fixture directory of this kind passes ($LITCACHE_FIXTURE_DIR).
		var cfg struct {
			EmbedDim int `json:"embed_dim"`
			Vision   struct {
				ImageSize int `json:"image_size"`
				Width     int `json:"width"`
			} `json:"vision_cfg"`
			Text struct {
				ContextLength int `json:"context_length"`
				VocabSize     int `json:"vocab_size"`
				Width         int `json:"width"`
			} `json:"text_cfg"`
		}
		raw, err := os.ReadFile(filepath.Join(dir, "open_clip_config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatalf("open_clip_config.json: %v", err)
		}
		S, T, V, E := cfg.Vision.ImageSize, cfg.Text.ContextLength, cfg.Text.VocabSize, cfg.EmbedDim
		if S <= 0 || T <= 0 || V <= 0 || E <= 0 {
			t.Fatalf("open_clip_config.json: image size %d, context %d, vocab %d, embed dim %d", S, T, V, E)
		}
		f, err := Open(filepath.Join(dir, "forward.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		px, shape, err := f.Float64("pixel_values")
		if err != nil || len(shape) != 4 || shape[0] < 1 || shape[1] != 3 || shape[2] != S || shape[3] != S {
			t.Fatalf("pixel_values %v, want (N,3,%d,%d): %v", shape, S, S, err)
		}
		N := shape[0]
		// First value, from struct.unpack('<d', …) on the file.
		if testutil.FixtureDir(t) == testutil.Testdata(t, "clip-tiny") && px[0] != -0.6913552053190106 {
			t.Errorf("pixel_values[0] = %v", px[0])
		}
		ids, shape, err := f.Int32s("input_ids")
		if err != nil || len(shape) != 2 || shape[0] < 1 || shape[1] != T {
			t.Fatalf("input_ids %v, want (M,%d): %v", shape, T, err)
		}
		M := shape[0]
		for _, id := range ids {
			if id < 0 || int(id) >= V {
				t.Errorf("input id %d outside the vocabulary of %d", id, V)
			}
		}
		for _, c := range []struct {
			name  string
			shape []int
		}{
			{"image_embeds", []int{N, E}},
			{"text_embeds", []int{M, E}},
			{"vision_pooled", []int{N, cfg.Vision.Width}},
			{"text_last_hidden", []int{M, T, cfg.Text.Width}},
		} {
			v, shape, err := f.Float64(c.name)
			if err != nil || !reflect.DeepEqual(shape, c.shape) || len(v) != product(c.shape) {
				t.Errorf("%s: shape %v (%d values), want %v: %v", c.name, shape, len(v), c.shape, err)
			}
		}
	})
	for _, name := range []string{"weights_hf.safetensors", "weights_openclip.safetensors", "train_grads_step0.safetensors", "train_final_weights.safetensors", "train_inputs.safetensors"} {
		t.Run(name, func(t *testing.T) {
			f, err := Open(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if len(f.Names()) == 0 {
				t.Fatal("no tensors")
			}
			for _, n := range f.Names() {
				info, _ := f.Info(n)
				if info.DType == "I32" {
					if _, _, err := f.Int32s(n); err != nil {
						t.Error(err)
					}
					continue
				}
				v, _, err := f.Float32(n)
				if err != nil {
					t.Fatal(err)
				}
				for i, x := range v {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
						t.Fatalf("%s[%d] = %v", n, i, x)
					}
				}
			}
			if _, ok := f.Info("logit_scale"); !ok && strings.Contains(name, "weights") {
				t.Error("no logit_scale")
			}
		})
	}
	t.Run("preprocess metadata", func(t *testing.T) {
		f, err := Open(testutil.Testdata(t, "preprocess/clip_preprocess_224.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if !strings.Contains(f.Metadata()["how"], "CenterCrop(224)") {
			t.Errorf("metadata = %v", f.Metadata())
		}
		info, ok := f.Info("birds/Junco_hyemalis.jpg")
		if !ok || info.DType != "U8" || !reflect.DeepEqual(info.Shape, []int{224, 224, 3}) {
			t.Errorf("info = %+v", info)
		}
	})
	t.Run("rewrite is identical in content", func(t *testing.T) {
		f, err := Open(filepath.Join(dir, "weights_openclip.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var ts []Tensor
		for _, n := range f.Names() {
			b, info, _ := f.Bytes(n)
			ts = append(ts, Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: b})
		}
		b, err := Marshal(ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		g, err := FromBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range f.Names() {
			x, _, _ := f.Bytes(n)
			y, _, _ := g.Bytes(n)
			if string(x) != string(y) {
				t.Errorf("%s differs after rewrite", n)
			}
		}
	})
}

func product(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
