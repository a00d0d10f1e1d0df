package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 12 at the store level: what parts and markers carry, and what a
// rerun can check with it.

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// Case 6: nothing binds a cache before its first part is committed.
func TestManifestComesWithFirstPart(t *testing.T) {
	dir := t.TempDir()
	if _, err := Create(dir, testManifest(4, Float32, 1)); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(dir, "manifest.json")) {
		t.Fatal("Create wrote manifest.json before any part was committed")
	}
	// A failed start with tower A leaves nothing: tower B may start over.
	other := testManifest(4, Float32, 1)
	other.Fingerprint = "sha256:tower-b"
	c, err := Create(dir, other)
	if err != nil {
		t.Fatalf("a retry with another tower after a start that committed nothing: %v", err)
	}
	fillPart(t, c, "train", "a-000000.tar", 3, 1, nil)
	m, err := ReadManifest(dir)
	if err != nil || m.Fingerprint != "sha256:tower-b" || m.Producer != testProducer {
		t.Fatalf("manifest after the first commit: %+v, %v", m, err)
	}

	// A manifest with no part beside it (an older build's failed start)
	// binds nothing either: the first commit replaces it.
	dir2 := t.TempDir()
	stale := testManifest(4, Float32, 1)
	stale.SchemaVersion = SchemaVersion
	stale.Fingerprint = "sha256:corrupt-weights"
	if err := writeManifest(dir2, stale); err != nil {
		t.Fatal(err)
	}
	c, err = Create(dir2, testManifest(4, Float32, 1))
	if err != nil {
		t.Fatalf("Create over a manifest without parts: %v", err)
	}
	fillPart(t, c, "train", "a-000000.tar", 3, 1, nil)
	if m, _ := ReadManifest(dir2); m.Fingerprint != "sha256:test-tower" {
		t.Fatalf("stale manifest kept: %+v", m)
	}
	// Once a part is in, another tower is refused.
	if _, err := Create(dir2, other); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("another tower over a cache with a part: %v", err)
	}
}

// Case 3: markers and parts carry the identity; a lost manifest is rebuilt
// from them and another tower is refused.
func TestLostManifestRebuilt(t *testing.T) {
	dir := t.TempDir()
	want := testManifest(8, Float16, 2)
	want.Tower = &TowerSource{Config: json.RawMessage(`{"embed_dim":8}`), Weights: "random:3"}
	c, err := Create(dir, want)
	if err != nil {
		t.Fatal(err)
	}
	fillPart(t, c, "train", "s-000000.tar", 5, 1, map[int]bool{1: true})
	fillPart(t, c, "val", "v-000000.tar", 4, 2, nil)
	before, err := Finalize(dir)
	if err != nil {
		t.Fatal(err)
	}
	pm, ok, err := ReadPartMeta(partPath(dir, "train.s-000000"))
	if err != nil || !ok || pm.Fingerprint != want.Fingerprint || pm.Producer != testProducer || pm.Dim != 8 || pm.Views != 2 || pm.Rows != 8 {
		t.Fatalf("part schema metadata %+v %v %v", pm, ok, err)
	}
	os.Remove(filepath.Join(dir, "manifest.json"))

	other := want
	other.Fingerprint = "sha256:other"
	if _, err := Create(dir, other); !errors.Is(err, ErrFingerprint) || !strings.Contains(err.Error(), "sha256:test-tower") {
		t.Fatalf("another tower over a cache whose manifest is lost: %v", err)
	}
	if _, err := Create(dir, want); err != nil {
		t.Fatalf("the same tower: %v", err)
	}
	after, err := Finalize(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		a, b any
	}{
		{"fingerprint", after.Fingerprint, before.Fingerprint}, {"model", after.Model, before.Model},
		{"dim", after.Dim, before.Dim}, {"dtype", after.DType, before.DType}, {"views", after.Views, before.Views},
		{"normalized", after.Normalized, before.Normalized}, {"producer", after.Producer, before.Producer},
		{"rows", after.Rows, before.Rows}, {"samples", after.Samples, before.Samples}, {"rejects", after.Rejects, before.Rejects},
		{"tower", fmt.Sprintf("%s %s", after.Tower.Config, after.Tower.Weights), fmt.Sprintf("%s %s", before.Tower.Config, before.Tower.Weights)},
	} {
		if fmt.Sprint(f.a) != fmt.Sprint(f.b) {
			t.Errorf("rebuilt %s %v, was %v", f.name, f.a, f.b)
		}
	}
	if r, err := Open(dir, ReadOptions{ExpectFingerprint: want.Fingerprint}); err != nil {
		t.Fatal(err)
	} else {
		r.Close()
	}
}

// Case 5: a rerun's cheap check finds a cut part; the full check finds a
// flipped byte; Redo lets the part be made again.
func TestCheckPart(t *testing.T) {
	dir := t.TempDir()
	c, err := Create(dir, testManifest(8, Float32, 1))
	if err != nil {
		t.Fatal(err)
	}
	fillPart(t, c, "train", "s-000000.tar", 20, 1, nil)
	name := PartName("train", "s-000000.tar")
	mk, _, _ := c.Done(name)
	for _, full := range []bool{false, true} {
		if err := c.CheckPart(mk, full); err != nil {
			t.Fatalf("sound part (full %v): %v", full, err)
		}
	}
	path := partPath(dir, name)
	good, _ := os.ReadFile(path)

	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 1
	os.WriteFile(path, flipped, 0o644)
	if err := c.CheckPart(mk, false); err != nil {
		t.Fatalf("a flipped byte in the rows fails the cheap check (it reads only the footer): %v", err)
	}
	if err := c.CheckPart(mk, true); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("full check of a flipped byte: %v", err)
	}
	for _, cut := range []int{len(good) / 2, len(good) - 1} {
		os.WriteFile(path, good[:cut], 0o644)
		if err := c.CheckPart(mk, false); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("part cut to %d of %d bytes: %v", cut, len(good), err)
		}
	}
	// Same size, footer overwritten.
	bad := append([]byte(nil), good...)
	copy(bad[len(bad)-40:], make([]byte, 30))
	os.WriteFile(path, bad, 0o644)
	if err := c.CheckPart(mk, false); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged footer: %v", err)
	}
	if err := c.Redo(name); err != nil {
		t.Fatal(err)
	}
	if _, done, _ := c.Done(name); done || exists(path) {
		t.Fatal("Redo left the marker or the part")
	}
	fillPart(t, c, "train", "s-000000.tar", 20, 1, nil)
	if rep, err := Verify(dir, VerifyOptions{}); err != nil {
		t.Fatalf("after the redo: %v %v", err, rep.Problems)
	}
}

// Case 4: a shard's identity is its size and the hash of its ends, not its
// path; another shard under the same name is an error naming both.
func TestCheckSource(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, 3<<20) // head and tail hashed apart
	for i := range big {
		big[i] = byte(i * 7)
	}
	a := filepath.Join(dir, "shards", "000000.tar")
	moved := filepath.Join(dir, "moved", "000000.tar")
	other := filepath.Join(dir, "other", "000000.tar")
	tailChanged := filepath.Join(dir, "tail", "000000.tar")
	for p, b := range map[string][]byte{a: big, moved: big, other: append([]byte{1}, big[1:]...), tailChanged: append(append([]byte(nil), big[:len(big)-1]...), 9)} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, b, 0o644)
	}
	src, err := SourceOf(a)
	if err != nil || src.Size != int64(len(big)) || !filepath.IsAbs(src.Path) || !strings.HasPrefix(src.Hash, sourceHashKind) {
		t.Fatalf("%+v %v", src, err)
	}
	mk := Marker{Name: "train.000000", Source: src}
	if _, err := CheckSource(mk, moved); err != nil {
		t.Fatalf("the same bytes elsewhere: %v", err)
	}
	for _, p := range []string{other, tailChanged} {
		_, err := CheckSource(mk, p)
		if !errors.Is(err, ErrSourceMismatch) || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if _, err := CheckSource(Marker{Name: "old"}, other); err != nil {
		t.Fatalf("a marker without a source (older build) passes: %v", err)
	}
}

// Issue 10: the producer is recorded per part; a writer of another
// producer is refused, at CreateWith and again at its first commit (a
// worker that started before the first part was in), unless allowed.
func TestProducerMixing(t *testing.T) {
	dir := t.TempDir()
	gpu := testManifest(4, Float32, 1)
	gpu.Producer = Producer{Backend: "cuda", Precision: "bf16", Decoder: "nvjpeg", Detail: "test GPU"}

	cpuCache, err := Create(dir, testManifest(4, Float32, 1))
	if err != nil {
		t.Fatal(err)
	}
	early, err := Create(dir, gpu) // no part yet: passes
	if err != nil {
		t.Fatal(err)
	}
	fillPart(t, cpuCache, "train", "a-000000.tar", 3, 1, nil)
	w, _ := early.NewPart("train.b-000000", "train", "b-000000.tar")
	w.Add("k", 1, 0, "c", []float32{1, 2, 3, 4})
	if _, err := w.Commit(0, 1, nil); !errors.Is(err, ErrMixedProducers) {
		t.Fatalf("first commit of a GPU worker into a CPU cache: %v", err)
	}
	if exists(partPath(dir, "train.b-000000")) {
		t.Fatal("the refused part was left in parts/")
	}
	_, err = Create(dir, gpu)
	if !errors.Is(err, ErrMixedProducers) || !strings.Contains(err.Error(), "cpu/float32/go") || !strings.Contains(err.Error(), "cuda/bf16/nvjpeg") {
		t.Fatalf("Create of a GPU writer: %v", err)
	}
	// Another GPU, same backend/precision/decoder: not a mix.
	sameKind := testManifest(4, Float32, 1)
	sameKind.Producer.Detail = "another machine"
	if _, err := Create(dir, sameKind); err != nil {
		t.Fatalf("same producer, other detail: %v", err)
	}

	mixed, err := CreateWith(dir, gpu, CreateOptions{AllowMixedProducers: true})
	if err != nil {
		t.Fatal(err)
	}
	fillPart(t, mixed, "train", "c-000000.tar", 2, 2, nil)
	mk, _, _ := mixed.Done(PartName("train", "c-000000.tar"))
	if !mk.MixedProducersAllowed || mk.Producer != gpu.Producer {
		t.Fatalf("marker %+v", mk)
	}
	m, err := Finalize(dir)
	if err != nil || len(m.Producers) != 2 || m.Producers[0].Producer != testProducer || m.Producers[1].Parts != 1 {
		t.Fatalf("manifest producers %+v, %v", m.Producers, err)
	}
	rep, err := Verify(dir, VerifyOptions{})
	if err != nil || !strings.Contains(strings.Join(rep.Warnings, "\n"), "cuda/bf16/nvjpeg") || len(rep.Producers) != 2 {
		t.Fatalf("verify of an allowed mix: %+v %v", rep, err)
	}
	// The same mix without the allowance on record is a problem.
	b, _ := os.ReadFile(markerPath(dir, mk.Name))
	os.WriteFile(markerPath(dir, mk.Name), []byte(strings.Replace(string(b), `"mixed_producers_allowed": true,`, "", 1)), 0o644)
	rep, err = Verify(dir, VerifyOptions{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(strings.Join(rep.Problems, "\n"), "mixes producers") {
		t.Fatalf("verify of an unseen mix: %+v %v", rep, err)
	}
}

// A damaged shard's part records the damage, and the samples it never gave
// count as samples and rejects; the rejects line names the last good key.
func TestDamageAccounting(t *testing.T) {
	dir := t.TempDir()
	c, err := Create(dir, testManifest(4, Float32, 1))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := c.NewPart("train.d-000000", "train", "d-000000.tar")
	for i := 0; i < 3; i++ {
		w.Add(fmt.Sprintf("k%d", i), 1, 0, "c", []float32{1, 2, 3, 4})
	}
	w.RejectMember("../evil.txt", "", 1536, `".." in path`)
	w.Damaged(Damage{Offset: 9000, After: "k2", Read: 4, Expected: 10, Lost: 6, How: "10 expected by sizes.json", Reason: "unexpected EOF"})
	mk, err := w.Commit(0, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mk.Samples != 10 || mk.Rejects != 7 || mk.Lost != 6 || mk.RejectLines() != 2 || mk.Damage == nil {
		t.Fatalf("marker %+v", mk)
	}
	rej, _ := ReadRejects(dir, mk.Name)
	if len(rej) != 2 || rej[0].Kind != KindMember || rej[0].Member != "../evil.txt" || rej[1].Kind != KindDamage || rej[1].After != "k2" || rej[1].Lost != 6 {
		t.Fatalf("rejects %+v", rej)
	}
	raw, _ := os.ReadFile(rejectsPath(dir, mk.Name))
	if strings.Contains(string(raw), `"key":""`) {
		t.Fatalf("a reject with an empty key:\n%s", raw)
	}
	if rep, err := Verify(dir, VerifyOptions{}); err != nil {
		t.Fatalf("%v %v", err, rep.Problems)
	}
	m, _ := Finalize(dir)
	if m.Samples != 10 || m.Rejects != 7 {
		t.Fatalf("manifest %d samples %d rejects", m.Samples, m.Rejects)
	}
}

// A part's lock is held against every other holder, in this process or
// another, and released when its holder dies.
func TestPartLock(t *testing.T) {
	dir := t.TempDir()
	c, err := Create(dir, testManifest(4, Float32, 1))
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.TryLock("train.a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.TryLock("train.a")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second lock: %v", err)
	}
	if l2, err := c.TryLock("train.b"); err != nil {
		t.Fatalf("another part's lock: %v", err)
	} else {
		l2.Unlock()
	}
	if err := l.Unlock(); err != nil || l.Unlock() != nil {
		t.Fatalf("unlock: %v", err)
	}
	l, err = c.TryLock("train.a")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	l.Unlock()

	// A holder killed with SIGKILL releases its lock.
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LITCACHE_LOCK_HELPER="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := out.Read(buf) // "locked\n" once the child holds it
	if !strings.Contains(string(buf[:n]), "locked") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q", buf[:n])
	}
	if _, err := c.TryLock("train.a"); !errors.Is(err, ErrLocked) {
		t.Fatalf("lock held by the helper: %v", err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	l, err = c.TryLock("train.a")
	if err != nil {
		t.Fatalf("the killed holder's lock was not released: %v", err)
	}
	l.Unlock()
}

// TestLockHelper is TestPartLock's child: it takes the lock and waits to be killed.
func TestLockHelper(t *testing.T) {
	dir := os.Getenv("LITCACHE_LOCK_HELPER")
	if dir == "" {
		t.Skip("helper process for TestPartLock")
	}
	c := &Cache{dir: dir}
	if _, err := c.TryLock("train.a"); err != nil {
		t.Fatal(err)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
}

// Markers say what made the rows, in JSON a person can read.
func TestMarkerRecordsIdentity(t *testing.T) {
	dir := t.TempDir()
	c, _ := Create(dir, testManifest(4, Float32, 1))
	shard := filepath.Join(dir, "in.tar")
	os.WriteFile(shard, []byte("shard bytes"), 0o644)
	src, _ := SourceOf(shard)
	w, _ := c.NewPart("train.in", "train", shard)
	w.SetSource(src)
	w.Add("k", 1, 0, "c", []float32{1, 2, 3, 4})
	if _, err := w.Commit(0, 1, nil); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	b, _ := os.ReadFile(markerPath(dir, "train.in"))
	json.Unmarshal(b, &raw)
	for _, k := range []string{"fingerprint", "producer", "source", "dim", "dtype", "views", "committed"} {
		if raw[k] == nil {
			t.Errorf("marker lacks %q:\n%s", k, b)
		}
	}
	if s := raw["source"].(map[string]any); s["path"] != src.Path || s["hash"] != src.Hash {
		t.Errorf("marker source %v", s)
	}
}

// A cache written before markers carried identity, producer and source
// still opens, takes new parts, passes the rerun checks and verifies (with
// a warning that its parts do not record their producer).
func TestOlderCacheStillWorks(t *testing.T) {
	dir := t.TempDir()
	c, err := Create(dir, testManifest(4, Float32, 1))
	if err != nil {
		t.Fatal(err)
	}
	fillPart(t, c, "train", "a-000000.tar", 3, 1, nil)
	if _, err := Finalize(dir); err != nil {
		t.Fatal(err)
	}
	name := PartName("train", "a-000000.tar")
	// Strip what older builds did not write.
	var mk map[string]any
	b, _ := os.ReadFile(markerPath(dir, name))
	json.Unmarshal(b, &mk)
	for _, k := range []string{"fingerprint", "model", "dim", "dtype", "views", "normalized", "producer", "source", "committed"} {
		delete(mk, k)
	}
	b, _ = json.Marshal(mk)
	os.WriteFile(markerPath(dir, name), b, 0o644)
	var m map[string]any
	b, _ = os.ReadFile(filepath.Join(dir, "manifest.json"))
	json.Unmarshal(b, &m)
	delete(m, "producer")
	delete(m, "producers")
	b, _ = json.Marshal(m)
	os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644)

	c, err = Create(dir, testManifest(4, Float32, 1))
	if err != nil {
		t.Fatalf("Create over an older cache: %v", err)
	}
	old, _, _ := c.Done(name)
	if err := c.CheckPart(old, true); err != nil {
		t.Fatalf("CheckPart of an older marker: %v", err)
	}
	if _, err := CheckSource(old, filepath.Join(dir, "manifest.json")); err != nil {
		t.Fatalf("CheckSource of an older marker: %v", err)
	}
	fillPart(t, c, "train", "b-000000.tar", 2, 2, nil)
	rep, err := Verify(dir, VerifyOptions{})
	if err != nil || !strings.Contains(strings.Join(rep.Warnings, "\n"), "1 parts do not record their producer") {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// The new part's producer is now the reference: another one is refused.
	gpu := testManifest(4, Float32, 1)
	gpu.Producer = Producer{Backend: "cuda", Precision: "bf16", Decoder: "go"}
	if _, err := Create(dir, gpu); !errors.Is(err, ErrMixedProducers) {
		t.Fatalf("another producer after the first recorded one: %v", err)
	}
	// A lost manifest cannot be rebuilt from markers that do not carry it.
	os.Remove(filepath.Join(dir, "manifest.json"))
	if _, err := Create(dir, testManifest(4, Float32, 1)); err == nil || !strings.Contains(err.Error(), "older build") {
		t.Fatalf("rebuild from an older marker: %v", err)
	}
}
