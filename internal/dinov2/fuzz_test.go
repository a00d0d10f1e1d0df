package dinov2

import "testing"

// FuzzParseConfig: config files are outside bytes; any input gives a valid
// config or an error, never a panic, and a parsed config validates and
// round-trips through its canonical JSON.
func FuzzParseConfig(f *testing.F) {
	c, _ := Builtin("dinov2-vitg14-reg")
	f.Add(c.JSON())
	f.Add([]byte(`{"model": {"img_size": 56, "patch_size": 14, "embed_dim": 64, "depth": 2, "num_heads": 4, "init_values": null}}`))
	f.Add([]byte(`{"model_type": "dinov2", "hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6, "use_swiglu_ffn": true}`))
	f.Add([]byte(`{"patch_size": 0, "img_size": -1}`))
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
