package bundle_test

import (
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/stages/bundle"
)

// rewrite re-encodes a bundle with its tensors and metadata edited.
func rewrite(t *testing.T, data []byte, edit func(ts map[string]safetensors.Tensor, md map[string]string)) []byte {
	t.Helper()
	f, err := safetensors.FromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	ts := map[string]safetensors.Tensor{}
	for _, n := range f.Names() {
		b, info, err := f.Bytes(n)
		if err != nil {
			t.Fatal(err)
		}
		ts[n] = safetensors.Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: append([]byte(nil), b...)}
	}
	md := f.Metadata()
	edit(ts, md)
	var list []safetensors.Tensor
	for _, v := range ts {
		list = append(list, v)
	}
	out, err := safetensors.Marshal(list, md)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every way a bundle can be wrong is an error that says what is wrong.
func TestOpenRejects(t *testing.T) {
	good := microBundle(t)
	if b, err := bundle.FromBytes(good, nil); err != nil {
		t.Fatalf("the good bundle: %v", err)
	} else {
		b.Close()
	}
	cases := []struct {
		name string
		edit func(ts map[string]safetensors.Tensor, md map[string]string)
		want string
	}{
		{"plain weights file", func(_ map[string]safetensors.Tensor, md map[string]string) { delete(md, "format") }, "not a litcache bundle"},
		{"newer version", func(_ map[string]safetensors.Tensor, md map[string]string) { md["bundle_version"] = "2" }, "version"},
		{"unknown family", func(_ map[string]safetensors.Tensor, md map[string]string) { md["tower"] = "dinov9" }, "dinov9"},
		{"no classes", func(_ map[string]safetensors.Tensor, md map[string]string) { md["classes"] = "[]" }, "no class"},
		{"duplicate id", func(_ map[string]safetensors.Tensor, md map[string]string) {
			md["classes"] = `[{"id":1,"name":"a"},{"id":1,"name":"b"},{"id":2,"name":"c"}]`
		}, "duplicate id 1"},
		{"classes and rows differ", func(_ map[string]safetensors.Tensor, md map[string]string) {
			md["classes"] = `[{"id":1,"name":"a"},{"id":2,"name":"b"}]`
		}, "class_embeddings"},
		{"no logit scale", func(ts map[string]safetensors.Tensor, _ map[string]string) { delete(ts, "logit_scale") }, "logit_scale"},
		{"tower tensor missing", func(ts map[string]safetensors.Tensor, _ map[string]string) { delete(ts, "visual.ln_post.weight") }, "visual.ln_post.weight"},
		{"stray tensor", func(ts map[string]safetensors.Tensor, _ map[string]string) {
			ts["extra"] = safetensors.F32("extra", []int{1}, []float32{1})
		}, "unexpected extra"},
		{"input size", func(_ map[string]safetensors.Tensor, md map[string]string) {
			md["preprocess"] = strings.Replace(md["preprocess"], `"size":16`, `"size":99999`, 1)
		}, "input size"},
		{"bad model config", func(_ map[string]safetensors.Tensor, md map[string]string) { md["model_config"] = `{"embed_dim": -1}` }, "model_config"},
		{"pooling the family lacks", func(_ map[string]safetensors.Tensor, md map[string]string) { md["tower_pool"] = "mean" }, `not "mean"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := bundle.FromBytes(rewrite(t, good, c.edit), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
