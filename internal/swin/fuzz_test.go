package swin

import "testing"

// FuzzParseConfig: any input gives a valid config or an error, never a
// panic; a parsed config validates and round-trips through its JSON.
func FuzzParseConfig(f *testing.F) {
	c, _ := Builtin("swin-b")
	f.Add(c.JSON())
	f.Add([]byte(`{"model": {"patch_size": [4, 4], "embed_dim": 32, "depths": [2, 2], "num_heads": [2, 4], "window_size": [4, 4]}, "image_size": 32}`))
	f.Add([]byte(`{"depths": [], "num_heads": [1], "window_size": [2, 3]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed an invalid config: %v", err)
		}
		if _, err := ParseConfig(c.JSON()); err != nil {
			t.Fatalf("canonical JSON does not parse: %v", err)
		}
	})
}
