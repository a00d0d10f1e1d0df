package inat

import (
	"strings"
	"testing"
)

func FuzzReadCOCO(f *testing.F) {
	f.Add(cocoHead + `"images":[{"id":10,"file_name":"a.jpg"}],"annotations":[{"image_id":10,"category_id":1}]}`)
	f.Add(`{"images":[{"id":1,"file_name":"x"}],"info":{"a":[1,{"b":null}]},"licenses":null}`)
	f.Add(`{"images":[{"id":1e3,"file_name":"x"}]}`)
	f.Add(`{"images":[`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, in string) {
		ds, err := ReadCOCO(strings.NewReader(in), COCOOptions{})
		if err != nil {
			return
		}
		seen := map[int64]bool{}
		for _, im := range ds.Images {
			if seen[im.ID] || im.FileName == "" {
				t.Fatalf("accepted a duplicate id or empty name: %+v", im)
			}
			seen[im.ID] = true
		}
	})
}

func FuzzReadCategoriesCSV(f *testing.F) {
	f.Add(",id,name,common_name,supercategory\n0,0,A b,C,Animalia\n")
	f.Add("id,name\n1,\"x\"\"y\"\n")
	f.Add("\ufeffid,name\n1,a\n2,b")
	f.Fuzz(func(t *testing.T, in string) {
		cats, err := ReadCategoriesCSV(strings.NewReader(in))
		if err != nil {
			return
		}
		seen := map[int]bool{}
		for _, c := range cats {
			if seen[c.ID] || c.ID < 0 {
				t.Fatalf("accepted id %d twice or negative", c.ID)
			}
			seen[c.ID] = true
		}
	})
}

func FuzzParseTemplate(f *testing.F) {
	f.Add(DefaultTemplate)
	f.Add("{id}{name}}")
	f.Add("{{name}")
	f.Fuzz(func(t *testing.T, in string) {
		tmpl, err := ParseTemplate(in, DefaultOmit)
		if err != nil {
			return
		}
		c := Category{ID: 1, Name: "A b", Supercategory: "Animalia"}
		if out := tmpl.Render(&c); strings.Contains(out, "  ") {
			t.Fatalf("render %q kept a double space", out)
		}
	})
}
