package cuda

import (
	"bytes"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/litcache/litcache/cuda/internal/kernelgen/gen"
	"github.com/litcache/litcache/cuda/internal/kernelproto"
)

func prototypes(t *testing.T) []kernelproto.Kernel {
	t.Helper()
	srcs, err := KernelSources()
	if err != nil {
		t.Fatal(err)
	}
	var all []kernelproto.Kernel
	for _, s := range srcs {
		ks, err := s.Kernels()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ks...)
	}
	if len(all) < 40 {
		t.Fatalf("only %d kernels parsed from the embedded sources", len(all))
	}
	return all
}

// checkWrapper compares a wrapper's Go parameters after (kernelTable, launchConfig)
// with the kernel's C parameters: count, order and kind.
func checkWrapper(t *testing.T, what string, fn any, k kernelproto.Kernel) {
	t.Helper()
	ft := reflect.TypeOf(fn)
	if ft.Kind() != reflect.Func || ft.NumIn() < 2 || ft.In(0) != reflect.TypeOf((*kernelTable)(nil)) ||
		ft.In(1) != reflect.TypeOf(launchConfig{}) {
		t.Errorf("%s: %v is not func(*kernelTable, launchConfig, ...)", what, ft)
		return
	}
	if got := ft.NumIn() - 2; got != len(k.Params) {
		t.Errorf("%s: wrapper takes %d arguments, %s takes %d", what, got, k.Signature(), len(k.Params))
		return
	}
	for i, p := range k.Params {
		if got := ft.In(2 + i).String(); got != p.Kind.GoType() {
			t.Errorf("%s: argument %d (%s %s) is %s in the wrapper, want %s", what, i, p.CType, p.Name, got, p.Kind.GoType())
		}
	}
}

// TestKernelWrappers checks every kernel's typed wrapper against the
// prototype parsed from the embedded .cu source, and that no wrapper is
// left without a kernel. Broken on purpose: launchBiasGrad taking N int32
// (and marshalling 4 bytes) for the kernel's long N fails with "bias_grad:
// argument 2 (long N) is int32 in the wrapper, want int64".
func TestKernelWrappers(t *testing.T) {
	seen := map[string]bool{}
	fams := map[string][]kernelproto.Kernel{}
	for _, k := range prototypes(t) {
		seen[k.Name] = true
		w, ok := kernelWrappers[k.Name]
		if !ok {
			t.Errorf("kernel %s has no wrapper: run go generate ./cuda", k.Name)
			continue
		}
		checkWrapper(t, k.Name, w, k)
		if k.Family != "" {
			fams[k.Family] = append(fams[k.Family], k)
		}
	}
	for name := range kernelWrappers {
		if !seen[name] {
			t.Errorf("wrapper for %s, which no source defines", name)
		}
	}
	for fam, ks := range fams {
		w, ok := familyWrappers[fam]
		if !ok {
			t.Errorf("family %s has no wrapper", fam)
			continue
		}
		for _, k := range ks {
			checkWrapper(t, fam+" (as "+k.Name+")", w, k)
		}
	}
	// The table has a slot for each kernel, and loadKernels fills them by name.
	var kt kernelTable
	slots := kt.slots()
	if len(slots) != len(seen) {
		t.Errorf("%d table slots for %d kernels", len(slots), len(seen))
	}
	for _, s := range slots {
		if !seen[s.name] {
			t.Errorf("slot %s names no kernel", s.name)
		}
	}
}

// TestGeneratedUpToDate: kernels_gen.go is what the generator makes of the
// sources today (a kernel added or changed without `go generate ./cuda` fails).
func TestGeneratedUpToDate(t *testing.T) {
	want, err := gen.Generate(os.DirFS("kernels"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("kernels_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("kernels_gen.go is stale: run go generate ./cuda")
	}
}

// TestMarshalArgs: each kind lands in its slot as the driver reads it (the
// parameter's own size from the slot's start, little-endian), and every
// slot pointer points at its own value.
func TestMarshalArgs(t *testing.T) {
	a := newKernelArgs(6)
	a.ptr(0xdeadbeef000)
	a.i32(-2)
	a.u32(0xfffffffe)
	a.i64(-3)
	a.f32(1.5)
	a.f64(-0.25)
	if a.n != 6 {
		t.Fatalf("n = %d", a.n)
	}
	read32 := func(i int) uint32 { return *(*uint32)(a.ptrs[i]) }
	read64 := func(i int) uint64 { return *(*uint64)(a.ptrs[i]) }
	if read64(0) != 0xdeadbeef000 {
		t.Errorf("ptr: %#x", read64(0))
	}
	if int32(read32(1)) != -2 {
		t.Errorf("i32: %d", int32(read32(1)))
	}
	if read32(2) != 0xfffffffe {
		t.Errorf("u32: %#x", read32(2))
	}
	if int64(read64(3)) != -3 {
		t.Errorf("i64: %d", int64(read64(3)))
	}
	if math.Float32frombits(read32(4)) != 1.5 {
		t.Errorf("f32: %v", math.Float32frombits(read32(4)))
	}
	if math.Float64frombits(read64(5)) != -0.25 {
		t.Errorf("f64: %v", math.Float64frombits(read64(5)))
	}
	for i := 0; i < a.n; i++ {
		if a.ptrs[i] != unsafe.Pointer(&a.vals[i]) {
			t.Errorf("slot %d points elsewhere", i)
		}
	}
}

// TestLaunchChecksUntypedArguments: Launch's ...any arguments are checked
// against the prototype: a wrong count or a wrong kind is an error naming
// the parameter, before anything reaches the driver.
func TestLaunchChecksUntypedArguments(t *testing.T) {
	var ln kernelproto.Kernel
	for _, k := range prototypes(t) {
		if k.Name == "layernorm_bf16" {
			ln = k
		}
	}
	f := &Function{Name: ln.Name, proto: &ln}
	ok := []any{uintptr(1), uintptr(2), uintptr(3), uintptr(4), uintptr(0), uintptr(0), int32(64), float32(1e-5)}
	if _, err := f.marshal(ok); err != nil {
		t.Fatalf("valid arguments refused: %v", err)
	}
	for _, c := range []struct {
		args []any
		want string
	}{
		{ok[:7], "7 arguments for layernorm_bf16("},
		{append(append([]any{}, ok[:6]...), int64(64), float32(1e-5)), "argument 6 is int64, the kernel takes int C (int32)"},
		{append(append([]any{}, ok[:6]...), int32(64), 1e-5), "argument 7 is float64, the kernel takes float eps (float32)"},
		{append(append([]any{}, ok[:6]...), "64", float32(1e-5)), "unsupported type string"},
		{append(append([]any{}, ok[:6]...), 1<<40, float32(1e-5)), "overflows a C int"},
	} {
		_, err := f.marshal(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error containing %q, got %v", c.want, err)
		}
	}
}
