package native

import (
	"errors"
	"testing"
)

func TestOpenMissingLibraryIsErrNotFound(t *testing.T) {
	_, err := Open(Spec{Name: "litcache-test-absent", Sonames: []string{"liblitcache_absent.so.9"}})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	// The result is remembered per name.
	_, err2 := Open(Spec{Name: "litcache-test-absent"})
	if err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("second Open: %v, want the remembered %v", err2, err)
	}
}

func TestNoNativeHidesLibraries(t *testing.T) {
	t.Setenv("LITCACHE_NO_NATIVE", "1")
	_, err := Open(Spec{Name: "litcache-test-libc", Sonames: []string{"libc.so.6"}})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("LITCACHE_NO_NATIVE set: want ErrNotFound, got %v", err)
	}
}

func TestOpenLibcAndBind(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	lib, err := Open(Spec{Name: "litcache-test-libc2", Sonames: []string{"libc.so.6"}})
	if err != nil {
		t.Skipf("no glibc here: %v", err)
	}
	var abs func(int32) int32
	if err := lib.Bind(&abs, "abs"); err != nil {
		t.Fatal(err)
	}
	if got := abs(-7); got != 7 {
		t.Fatalf("abs(-7) = %d", got)
	}
	if lib.Has("litcache_no_such_symbol") {
		t.Fatal("Has reported a symbol that does not exist")
	}
	if _, err := lib.Sym("litcache_no_such_symbol"); err == nil {
		t.Fatal("Sym found a symbol that does not exist")
	}
}
