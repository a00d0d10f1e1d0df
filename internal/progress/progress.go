// Package progress shows the advance of long work (DESIGN.md decision 7): a
// redrawn bar with rate and ETA on a terminal, plain periodic log lines
// otherwise (CI, SLURM logs, pipes).
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bar counts work done towards a total (0 when unknown). It is safe for
// concurrent use; Add is a single atomic add.
type Bar struct {
	label    string
	unit     string
	total    atomic.Int64
	done     atomic.Int64
	start    time.Time
	w        io.Writer
	tty      bool
	interval time.Duration
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

// Options tune a Bar. The zero value writes to stderr, detects a terminal and
// redraws every 200 ms on a terminal and every 10 s otherwise.
type Options struct {
	W        io.Writer
	Unit     string // e.g. "img"; default "it"
	Interval time.Duration
	Quiet    bool // draw nothing
}

// New starts a bar. Call Finish when the work ends.
func New(label string, total int64, opt Options) *Bar {
	b := &Bar{label: label, unit: opt.Unit, start: time.Now(), w: opt.W, stop: make(chan struct{})}
	if b.unit == "" {
		b.unit = "it"
	}
	if b.w == nil {
		b.w = os.Stderr
		b.tty = isTerminal(os.Stderr)
	}
	if opt.Quiet {
		b.w = io.Discard
		b.tty = false
	}
	b.interval = opt.Interval
	if b.interval == 0 {
		b.interval = 10 * time.Second
		if b.tty {
			b.interval = 200 * time.Millisecond
		}
	}
	b.total.Store(total)
	b.wg.Add(1)
	go b.loop()
	return b
}

// Add records n more units done.
func (b *Bar) Add(n int64) { b.done.Add(n) }

// SetTotal changes the total (e.g. once a streamed input's size is known).
func (b *Bar) SetTotal(n int64) { b.total.Store(n) }

// Done is the count so far.
func (b *Bar) Done() int64 { return b.done.Load() }

// Rate is units per second since the start.
func (b *Bar) Rate() float64 {
	el := time.Since(b.start).Seconds()
	if el <= 0 {
		return 0
	}
	return float64(b.done.Load()) / el
}

func (b *Bar) loop() {
	defer b.wg.Done()
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.draw(false)
		}
	}
}

// Finish stops redrawing and prints the final line.
func (b *Bar) Finish() {
	b.once.Do(func() {
		close(b.stop)
		b.wg.Wait()
		b.draw(true)
	})
}

func (b *Bar) draw(final bool) {
	done, total := b.done.Load(), b.total.Load()
	el := time.Since(b.start)
	rate := b.Rate()
	var s strings.Builder
	fmt.Fprintf(&s, "%s ", b.label)
	if total > 0 {
		frac := float64(done) / float64(total)
		if frac > 1 {
			frac = 1
		}
		if b.tty {
			const width = 24
			n := int(frac * width)
			s.WriteString("[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "] ")
		}
		fmt.Fprintf(&s, "%d/%d %s (%.1f%%) ", done, total, b.unit, 100*frac)
	} else {
		fmt.Fprintf(&s, "%d %s ", done, b.unit)
	}
	fmt.Fprintf(&s, "%.1f %s/s ", rate, b.unit)
	if final {
		fmt.Fprintf(&s, "in %s", el.Round(100*time.Millisecond))
	} else if total > 0 && rate > 0 && done < total {
		eta := time.Duration(float64(total-done) / rate * float64(time.Second))
		fmt.Fprintf(&s, "ETA %s", eta.Round(time.Second))
	}
	if b.tty {
		fmt.Fprintf(b.w, "\r\033[K%s", s.String())
		if final {
			fmt.Fprintln(b.w)
		}
	} else {
		fmt.Fprintln(b.w, s.String())
	}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return fi.Mode()&os.ModeCharDevice != 0
}
