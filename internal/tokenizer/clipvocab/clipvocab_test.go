package clipvocab

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestChecksum: the embedded bytes are openai/CLIP's file, unchanged.
func TestChecksum(t *testing.T) {
	sum := sha256.Sum256(Gzip)
	if got := hex.EncodeToString(sum[:]); got != SHA256 {
		t.Fatalf("embedded %s: sha256 %s, want %s (%d bytes)", Name, got, SHA256, len(Gzip))
	}
}
