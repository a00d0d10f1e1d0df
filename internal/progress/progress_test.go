package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPlainLinesWithRateAndTotal(t *testing.T) {
	var buf bytes.Buffer
	b := New("extract", 100, Options{W: &buf, Unit: "img", Interval: time.Hour})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 25; j++ {
				b.Add(1)
			}
		}()
	}
	wg.Wait()
	b.Finish()
	b.Finish() // idempotent
	out := buf.String()
	if b.Done() != 100 {
		t.Fatalf("Done = %d", b.Done())
	}
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "extract 100/100 img (100.0%)") || !strings.Contains(out, "img/s") {
		t.Fatalf("final line: %q", out)
	}
	if strings.Contains(out, "\r") {
		t.Fatal("a non-terminal writer got carriage returns")
	}
}

func TestQuietAndUnknownTotal(t *testing.T) {
	b := New("x", 0, Options{Quiet: true})
	b.Add(3)
	b.Finish()
	var buf bytes.Buffer
	b = New("scan", 0, Options{W: &buf, Interval: time.Hour})
	b.Add(7)
	b.Finish()
	if !strings.HasPrefix(buf.String(), "scan 7 it ") {
		t.Fatalf("unknown total: %q", buf.String())
	}
}
