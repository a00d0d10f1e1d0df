package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// Reject is one line of rejects/NAME.jsonl and of rejects.jsonl: a sample
// that was not embedded, and why. Key is "" for damage to the shard itself
// (a cut or corrupt tar), which costs the samples after it.
type Reject struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
	Shard  string `json:"shard"`
	Part   string `json:"part"`
}

// ReadRejects reads part NAME's rejects (none when the file is absent).
func ReadRejects(dir, name string) ([]Reject, error) {
	b, err := os.ReadFile(rejectsPath(dir, name))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: rejects of part %s: %w", name, err)
	}
	var out []Reject
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r Reject
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("store: rejects of part %s: %v: %w", name, err, ErrCorrupt)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}
