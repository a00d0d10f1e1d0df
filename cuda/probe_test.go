package cuda

import "testing"

// TestProbeNeverFails: doctor's probe records what is missing instead of failing.
func TestProbeNeverFails(t *testing.T) {
	r := Probe()
	if r.Driver == "" && r.DriverErr == nil {
		t.Fatal("no driver and no error recorded")
	}
	if len(r.Libraries) != 3 {
		t.Fatalf("want reports for nvrtc, cublasLt and nvjpeg, got %d", len(r.Libraries))
	}
	for _, l := range r.Libraries {
		if l.Path == "" && l.Err == nil {
			t.Errorf("%s: neither found nor an error", l.Name)
		}
	}
	t.Logf("driver=%q err=%v gpus=%d libs=%+v", r.Driver, r.DriverErr, len(r.GPUs), r.Libraries)
}
