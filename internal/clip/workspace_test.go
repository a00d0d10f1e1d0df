package clip

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/testutil/parity"
)

// randomIDs returns (B,T) token rows: start-of-text, 1..T-2 random ids,
// end-of-text, zero padding — the shape of tokenizer output.
func randomIDs(rng *rand.Rand, cfg Config, B, T int) []int32 {
	V := int32(cfg.Text.VocabSize)
	ids := make([]int32, B*T)
	for b := 0; b < B; b++ {
		n := 1 + rng.IntN(max(T-1, 1))
		row := ids[b*T : (b+1)*T]
		row[0] = V - 2
		for t := 1; t < n; t++ {
			row[t] = 1 + rng.Int32N(V-3)
		}
		row[min(n, T-1)] = V - 1
	}
	return ids
}

// aux allocates the tests' own tensors, so that the towers' backends count
// only the towers' memory.
var aux = backend.NewCPU()

// step runs Forward and Backward (dEmb = emb, a fixed function of the
// output) and returns the embeddings and every gradient.
func step(tt *TextTower, ids []int32, B, T int) [][]float32 {
	be := tt.be
	tt.ZeroGrad()
	emb := tt.Forward(ids, B, T)
	out := [][]float32{be.ToFloat32(emb, nil)}
	d := aux.FromFloat32(out[0], emb.Shape()...)
	tt.Backward(d)
	aux.Free(d)
	for _, p := range tt.Params() {
		out = append(out, be.ToFloat32(p.Grad, nil))
	}
	return out
}

// hideView hides the CPU backend's View (and Trim), as a backend that cannot
// view storage would: the tower then reallocates on every shape change.
type hideView struct{ backend.Backend }

// TestTextWorkspace: training steps of varying (B,T) run in views of one
// workspace sized for the largest batch, allocate nothing once it has been
// seen (after Reserve, nothing at all), and give bit for bit the numbers of
// a tower that allocates each batch's exact shape.
func TestTextWorkspace(t *testing.T) {
	_, cfg := fixtureConfig(t)
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][2]int{{4, 16}, {3, 9}, {4, 12}, {2, 16}, {4, 16}, {1, 3}, {4, 5}, {3, 16}, {4, 11}, {2, 7}}
	batches := make([][]int32, len(shapes))
	for i, s := range shapes {
		batches[i] = randomIDs(rng, cfg, s[0], s[1])
	}
	be := backend.NewCPU()
	tt := NewRandomTextTower(be, cfg, 3)
	defer tt.Free()
	ref := NewRandomTextTower(hideView{backend.NewCPU()}, cfg, 3)
	defer ref.Free()
	tt.Reserve(4, 16)
	tt.ZeroGrad() // gradients allocated before the first measurement
	before := be.MemStats().Allocated
	for i, s := range shapes {
		got := step(tt, batches[i], s[0], s[1])
		if a := be.MemStats().Allocated; a != before {
			t.Fatalf("step %d (%d×%d) allocated %d bytes of tensors after Reserve", i, s[0], s[1], a-before)
		}
		want := step(ref, batches[i], s[0], s[1])
		for k := range want {
			if !slices.Equal(got[k], want[k]) {
				t.Fatalf("step %d (%d×%d): tensor %d differs from an exact-shape tower", i, s[0], s[1], k)
			}
		}
	}
}

// TestTextWorkspaceGrows: without Reserve the workspace grows to the
// componentwise largest (B,T) and then stops allocating.
func TestTextWorkspaceGrows(t *testing.T) {
	_, cfg := fixtureConfig(t)
	rng := rand.New(rand.NewPCG(3, 4))
	be := backend.NewCPU()
	tt := NewRandomTextTower(be, cfg, 5)
	defer tt.Free()
	tt.ZeroGrad()
	var after []int64
	for _, s := range [][2]int{{2, 16}, {4, 8}, {3, 12}, {4, 16}, {1, 16}, {4, 3}} {
		step(tt, randomIDs(rng, cfg, s[0], s[1]), s[0], s[1])
		after = append(after, be.MemStats().Allocated)
	}
	// (2,16) then (4,8) grows to (4,16); nothing after.
	if after[1] == after[0] || after[5] != after[1] {
		t.Errorf("tensor bytes allocated after each step: %v", after)
	}
}

// TestEncodeBucket: Encode rounds the context up to a multiple of 8 with
// padding; the embeddings equal the unpadded computation's to float
// rounding (measured ≤ 3e-7 relative on clip-tiny: the padded batch crosses
// attention's GEMM threshold of 16 tokens and sums in another order).
func TestEncodeBucket(t *testing.T) {
	dir, cfg := fixtureConfig(t)
	be := backend.NewCPU()
	m, err := LoadModel(be, cfg, dir+"/weights_hf.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, T := range []int{3, 9, 13} {
		ids := randomIDs(rng, cfg, 5, T)
		want := be.ToFloat32(m.Text.encode(ids, 5, T, nil), nil)
		got := m.Text.Encode(ids, 5, T)
		if e := parity.RelErr(got, toF64(want)); !(e <= 1e-6) {
			t.Errorf("T=%d: padded to %d, relative error %.3g", T, BucketContext(T, cfg.Text.ContextLength), e)
		}
	}
	if BucketContext(13, 16) != 16 || BucketContext(9, 12) != 12 || BucketContext(8, 77) != 8 || BucketContext(75, 77) != 77 {
		t.Error("BucketContext")
	}
}

// trimCounter is a backend that keeps memory for reuse (Trim) but cannot
// view storage, as the CUDA backend is.
type trimCounter struct {
	backend.Backend
	trims int
}

func (b *trimCounter) Trim() { b.trims++ }

// TestNoViewNoTrim: on a backend without views the tower rebuilds its
// activations per shape and leaves the backend's pool alone (its buffers
// serve the shape when it recurs); only a viewing backend's workspace
// growth trims.
func TestNoViewNoTrim(t *testing.T) {
	_, cfg := fixtureConfig(t)
	rng := rand.New(rand.NewPCG(7, 8))
	be := &trimCounter{Backend: backend.NewCPU()}
	tt := NewRandomTextTower(be, cfg, 5)
	defer tt.Free()
	for _, s := range [][2]int{{2, 8}, {4, 16}, {2, 8}, {3, 12}} {
		step(tt, randomIDs(rng, cfg, s[0], s[1]), s[0], s[1])
	}
	if be.trims != 0 {
		t.Errorf("%d Trim calls on a backend without views", be.trims)
	}
}
