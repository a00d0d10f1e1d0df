package store

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkShardIdentity is what a rerun pays per shard to tell a shard from
// another of the same name (SourceOf: size + first and last MiB), beside the
// reference of hashing the whole shard (the full sha256 a stronger check
// would need), on a 64 MiB shard held in the page cache.
func BenchmarkShardIdentity(b *testing.B) {
	path := filepath.Join(b.TempDir(), "000000.tar")
	data := make([]byte, 64<<20)
	rand.New(rand.NewSource(1)).Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("head+tail", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			if _, err := SourceOf(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("whole-file-sha256", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			if _, _, err := hashFile(path, func(int64) {}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCheckPart is the rerun's check of one finished part (size and
// Arrow footer) beside the reference of verifying its whole sha256
// (--verify), on a part of 4096 rows of 768 float16 values (6 MiB).
func BenchmarkCheckPart(b *testing.B) {
	dir := b.TempDir()
	c, err := Create(dir, testManifest(768, Float16, 1))
	if err != nil {
		b.Fatal(err)
	}
	w, _ := c.NewPart("train.p", "train", "p.tar")
	emb := make([]float32, 768)
	for i := 0; i < 4096; i++ {
		emb[i%768] = float32(i)
		w.Add("k"+string(rune('a'+i%26))+string(rune(i)), 1, 0, "c", emb)
	}
	mk, err := w.Commit(0, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, full := range []bool{false, true} {
		name := "size+footer"
		if full {
			name = "full-sha256"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				if err := c.CheckPart(mk, full); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
