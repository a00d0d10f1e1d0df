package extract

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadShards: samples come out in shard order and sample order, each
// shard followed by its end with the count; a missing shard and one cut
// mid-member end early with the reason, keeping the samples before it.
func TestReadShards(t *testing.T) {
	dir := t.TempDir()
	good := makeShards(t, dir, 2, 3)
	var ms []member
	for i := range 4 {
		ms = append(ms, goodSample(t, fmt.Sprintf("cut_%d", i), i, uint64(i+1))...)
	}
	full := filepath.Join(dir, "full.tar")
	writeShard(t, full, ms, 0)
	st, _ := os.Stat(full)
	cut := filepath.Join(dir, "cut.tar")
	writeShard(t, cut, ms, int(st.Size())*5/8)
	missing := filepath.Join(dir, "missing.tar")
	var jobs []shardJob
	for _, p := range []string{good[0], missing, cut, good[1]} {
		jobs = append(jobs, shardJob{path: p})
	}
	out := make(chan *sample, 100)
	ends := make(chan shardEnd, len(jobs))
	win := newWindow(100)
	if err := readShards(context.Background(), jobs, win, out, ends); err != nil {
		t.Fatal(err)
	}
	var got []string
	for s := range out {
		got = append(got, fmt.Sprintf("%d:%d:%s", s.shard, s.seq, s.raw.Key))
	}
	want := "0:0:s00_0000 0:1:s00_0001 0:2:s00_0002 2:0:cut_0 2:1:cut_1 3:0:s01_0000 3:1:s01_0001 3:2:s01_0002"
	if strings.Join(got, " ") != want {
		t.Fatalf("samples %v\nwant %s", got, want)
	}
	var endsGot []string
	for e := range ends {
		endsGot = append(endsGot, fmt.Sprintf("%d:%d:%v", e.shard, e.samples, e.err != nil))
	}
	if strings.Join(endsGot, " ") != "0:3:false 1:0:true 2:2:true 3:3:false" {
		t.Fatalf("ends %v", endsGot)
	}
	if win.held.Load() != 8 {
		t.Fatalf("%d window slots held, want one per sample read (8)", win.held.Load())
	}
}
