package tower

import "testing"

// FuzzParseAny: a config file of any family, or garbage, gives a Config or
// an error, never a panic; a parsed config's canonical JSON reads back.
func FuzzParseAny(f *testing.F) {
	for _, name := range []string{"clip-tiny", "dinov2-vits14-reg", "swin-t"} {
		c, _ := Resolve(name)
		f.Add([]byte(`{"family": "` + c.Family() + `", "config": ` + string(c.JSON()) + `}`))
		f.Add(c.JSON())
	}
	f.Add([]byte(`{"family": 3}`))
	f.Add([]byte(`{"model": {"depth": 2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseAny(data)
		if err != nil {
			return
		}
		if _, err := ParseConfig(c.Family(), c.JSON()); err != nil {
			t.Fatalf("%s: canonical JSON does not parse: %v", c.Family(), err)
		}
		if _, err := c.Dim(""); err != nil {
			t.Fatal(err)
		}
	})
}
