package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// Reject is one line of rejects/NAME.jsonl and of rejects.jsonl: something
// of an input shard that was not embedded, and why. Kind says what: a
// sample (undecodable image, bad label; the default, written as no kind), a
// member left out of every sample (unsafe name, link: Member is its name as
// stored), or the damage that ended the shard early (After: the last sample
// read whole; Key: the sample it cut short, when known; Lost: the samples
// never read).
type Reject struct {
	Kind   string `json:"kind,omitempty"`
	Key    string `json:"key,omitempty"`
	Member string `json:"member,omitempty"`
	After  string `json:"after,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	Lost   int    `json:"lost,omitempty"`
	Reason string `json:"reason"`
	Shard  string `json:"shard"`
	Part   string `json:"part"`
}

// The kinds of Reject besides a sample's.
const (
	KindMember = "member"
	KindDamage = "damage"
)

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
