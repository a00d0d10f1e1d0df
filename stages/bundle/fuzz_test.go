package bundle_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/stages/bundle"
	"github.com/litcache/litcache/stages/bundle/bundletest"
)

// microBundle is a valid bundle of a few kilobytes (a 1-layer, 16-wide ViT
// on 16 px), a seed small enough for the fuzzer to mutate quickly.
func microBundle(tb testing.TB) []byte {
	tb.Helper()
	model := filepath.Join(tb.TempDir(), "micro.json")
	cfg := `{"embed_dim": 8, "vision_cfg": {"image_size": 16, "patch_size": 8, "width": 16, "layers": 1, "head_width": 8, "mlp_ratio": 1},
		"text_cfg": {"context_length": 4, "vocab_size": 16, "width": 8, "heads": 1, "layers": 1}}`
	if err := os.WriteFile(model, []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	tw, err := tower.Load(backend.NewCPU(), tower.Spec{Model: model, Weights: "random:1"})
	if err != nil {
		tb.Fatal(err)
	}
	defer tw.Free()
	classes := bundletest.Classes()[:3]
	emb := make([]float32, 3*8)
	for i := range emb {
		emb[i] = float32(i%5) / 5
	}
	path := filepath.Join(tb.TempDir(), "micro.safetensors")
	if err := bundle.Write(path, tw.Save(), emb, 4, bundle.Meta{Classes: classes, Templates: []string{"{}"}}); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// FuzzFromBytes: any bytes either open as a bundle that classifies, or give
// an error; never a panic, never an allocation beyond what the bytes hold.
//
// The fuzzer's input is an edit of a valid bundle built once (bytes
// [at, at+cut) replaced by insert; with fixLength the 8-byte header length
// rewritten to fit an edit inside the header), not the bundle's bytes
// themselves. With the 24 KB bundle as the input, every input that found new
// coverage was minimized (a pass quadratic in the input's length) until
// -fuzzminimizetime ran out, 60 s by default: the fuzzer stalled at 0–2
// execs/s. An edit is a few bytes to minimize, and no input is lost: at 0
// with cut ≥ the bundle's length, insert is any byte string.
func FuzzFromBytes(f *testing.F) {
	good := microBundle(f)
	n := uint32(len(good))
	f.Add(uint32(0), uint32(0), []byte{}, false)   // the bundle as written
	f.Add(n/2, n, []byte{}, false)                 // cut short
	f.Add(uint32(0), n, []byte("{}"), false)       // not a safetensors file
	f.Add(uint32(9), uint32(0), []byte(" "), true) // a header edit that keeps it valid
	// A header asking for 10⁸ image-tower layers, the file holding one: it
	// took 38 GB before clip.MaxLayers refused it.
	layers := []byte(`\"layers\": 1`)
	i := bytes.Index(good, layers)
	if i < 0 {
		f.Fatalf("the micro bundle's metadata has no %s", layers)
	}
	f.Add(uint32(i+len(layers)-1), uint32(1), []byte("99999999"), true)
	f.Fuzz(func(t *testing.T, at, cut uint32, insert []byte, fixLength bool) {
		b, err := bundle.FromBytes(edit(good, at, cut, insert, fixLength), nil)
		if err != nil {
			return
		}
		defer b.Close()
		S := b.InputSize()
		p := mustProbs(t, b, make([]float32, 3*S*S), 1)
		for _, r := range bundle.Ranks {
			if b.CheckRank(r) == nil {
				if _, err := b.Top(p, 5, r); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// edit returns data with bytes [at, at+cut) (clamped to data) replaced by
// insert. With fixLength, an edit that lies inside the safetensors header
// has the header's length prefix changed by as much as the edit changed
// the header.
func edit(data []byte, at, cut uint32, insert []byte, fixLength bool) []byte {
	lo := min(uint64(at), uint64(len(data)))
	hi := min(lo+uint64(cut), uint64(len(data)))
	out := make([]byte, 0, uint64(len(data))-(hi-lo)+uint64(len(insert)))
	out = append(append(append(out, data[:lo]...), insert...), data[hi:]...)
	if !fixLength || len(data) < 8 {
		return out
	}
	hdr := binary.LittleEndian.Uint64(data[:8])
	if lo < 8 || hi > 8+hdr {
		return out
	}
	binary.LittleEndian.PutUint64(out[:8], hdr-(hi-lo)+uint64(len(insert)))
	return out
}

// FuzzParseMeta: header metadata from outside (the JSON of the metadata
// map) is checked, never trusted. As in FuzzFromBytes, the input is an edit
// of valid metadata (4 KB, too long to minimize quickly), and any JSON is
// still one (at 0, cut ≥ its length).
func FuzzParseMeta(f *testing.F) {
	st, err := safetensors.FromBytes(microBundle(f))
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(st.Metadata())
	n := uint32(len(good))
	f.Add(uint32(0), uint32(0), []byte{})
	f.Add(uint32(0), n, []byte(`{"format":"litcache-bundle","bundle_version":"1"}`))
	f.Fuzz(func(t *testing.T, at, cut uint32, insert []byte) {
		var md map[string]string
		if json.Unmarshal(edit(good, at, cut, insert, false), &md) != nil {
			return
		}
		m, err := bundle.ParseMeta(md)
		if err != nil {
			return
		}
		if len(m.Classes) == 0 || len(m.Templates) == 0 || m.Preprocess.Size <= 0 {
			t.Fatalf("accepted metadata without classes, templates or size: %+v", m)
		}
		if _, err := m.Encode(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzWebPOrientation: the RIFF chunk walk over outside bytes.
func FuzzWebPOrientation(f *testing.F) {
	f.Add(webpWithEXIF(6))
	f.Add(solidWebP(3, 2, [3]uint8{1, 2, 3}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if o := bundle.WebPOrientation(data); o < 0 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
		if _, err := bundle.DecodePhoto(data, imageproc.Limits{MaxSide: 512, MaxPixels: 1 << 16}); err != nil {
			return
		}
	})
}
