package inat

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/testutil"
)

// figure1 holds the six captions of the paper's Figure 1 with their category
// ids, as ../shared/data/SOURCES.md quotes them.
var figure1 = map[int]string{
	3308: "A photo of the Buff-tailed Coronet Birds Boissonneaua flavescens",
	2738: "A photo of the Common Blue Crab Callinectes sapidus",
	2159: "A photo of the Imperial Moth Insects Eacles imperialis",
	5407: "A photo of the Oakmoss Fungi Evernia prunastri",
	5213: "A photo of the Pacific Purple Sea Urchin Strongylocentrotus purpuratus",
	2087: "A photo of the Pine White Insects Neophasia menapia",
}

func realCategories(t *testing.T) []Category {
	t.Helper()
	cats, err := LoadCategoriesCSV(testutil.SharedData(t, "inat2021/categories.csv"))
	if err != nil {
		t.Fatal(err)
	}
	return cats
}

func defaultTemplate(t *testing.T) *Template {
	t.Helper()
	tmpl, err := ParseTemplate(DefaultTemplate, DefaultOmit)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func TestFigure1Captions(t *testing.T) {
	cats := realCategories(t)
	tmpl := defaultTemplate(t)
	byID := map[int]*Category{}
	for i := range cats {
		byID[cats[i].ID] = &cats[i]
	}
	for id, want := range figure1 {
		c, ok := byID[id]
		if !ok {
			t.Fatalf("category %d missing", id)
		}
		if got := tmpl.Render(c); got != want {
			t.Errorf("category %d: got %q, want %q", id, got, want)
		}
	}
}

// TestReferenceCaptions checks the captions listed in the tokenizer fixture
// (testdata/tokenizer/clip_bpe_reference.json, FIXTURES.md: the six Figure 1
// captions and 200 sampled iNat2021 captions, with their category ids).
func TestReferenceCaptions(t *testing.T) {
	var ref struct {
		Figure1 []struct {
			ID      int    `json:"id"`
			Caption string `json:"caption"`
		} `json:"figure1_captions"`
		Sampled []struct {
			ID      int    `json:"id"`
			Caption string `json:"caption"`
		} `json:"sampled_captions"`
	}
	b, err := os.ReadFile(testutil.Testdata(t, "tokenizer/clip_bpe_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Figure1) != 6 || len(ref.Sampled) == 0 {
		t.Fatalf("fixture has %d figure-1 and %d sampled captions", len(ref.Figure1), len(ref.Sampled))
	}
	for _, r := range ref.Figure1 {
		if figure1[r.ID] != r.Caption {
			t.Errorf("fixture figure 1 caption %d = %q, SOURCES.md says %q", r.ID, r.Caption, figure1[r.ID])
		}
	}
	cats := realCategories(t)
	tmpl := defaultTemplate(t)
	byID := map[int]*Category{}
	for i := range cats {
		byID[cats[i].ID] = &cats[i]
	}
	for _, r := range append(ref.Figure1, ref.Sampled...) {
		if got := tmpl.Render(byID[r.ID]); got != r.Caption {
			t.Errorf("category %d: got %q, fixture %q", r.ID, got, r.Caption)
		}
	}
}

func TestAllCategoriesCaptioned(t *testing.T) {
	cats := realCategories(t)
	if len(cats) != 10000 {
		t.Fatalf("%d categories, want 10000", len(cats))
	}
	caps, distinct := defaultTemplate(t).Captions(cats)
	for i, c := range caps {
		if c == "" || strings.Contains(c, "  ") || strings.Contains(c, "{") {
			t.Errorf("category %d: bad caption %q", cats[i].ID, c)
		}
	}
	t.Logf("10000 categories captioned, %d distinct captions", distinct)
	if distinct != len(cats) {
		t.Errorf("%d distinct captions for %d classes", distinct, len(cats))
	}
	sel, err := SelectFields(cats, nil, DefaultOmit)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("--fields auto on iNat2021: %v → %d distinct of %d (%d subsets tried: %+v)", sel.Fields, sel.Distinct, sel.Classes, sel.Tried, sel.Steps)
	if sel.Distinct != len(cats) {
		t.Errorf("auto fields %v give %d distinct captions", sel.Fields, sel.Distinct)
	}
	for _, r := range Ranks {
		if cats[0].Taxon(r) == "" {
			t.Errorf("rank %s empty for category 0", r)
		}
	}
}

func TestReadCategoriesCSV(t *testing.T) {
	good := ",id,name,common_name,supercategory,kingdom,label\n0,0,Lumbricus terrestris,Common Earthworm,Animalia,Animalia,x\n1,7,\"Abies alba\",\"Fir, silver\",Plants,Plantae,y\n"
	cats, err := ReadCategoriesCSV(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	want := []Category{{ID: 0, Name: "Lumbricus terrestris", CommonName: "Common Earthworm", Supercategory: "Animalia", Kingdom: "Animalia"},
		{ID: 7, Name: "Abies alba", CommonName: "Fir, silver", Supercategory: "Plants", Kingdom: "Plantae"}}
	if !reflect.DeepEqual(cats, want) {
		t.Fatalf("got %+v", cats)
	}
	bad := []struct{ name, in, want string }{
		{"empty", "", "empty file"},
		{"no id column", "name,common_name\na,b\n", `"id" column`},
		{"bad id", "id,name\nx,a\n", `id "x"`},
		{"negative id", "id,name\n-1,a\n", `id "-1"`},
		{"duplicate id", "id,name\n1,a\n1,b\n", "duplicate category id 1"},
		{"short row", "id,name,genus\n1,a\n", "wrong number of fields"},
		{"no rows", "id,name\n", "no categories"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCategoriesCSV(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestLoadCOCOSample(t *testing.T) {
	path := testutil.SharedData(t, "inat2021/inat2021_val_sample_records.json")
	// The sample's annotations point at categories 3938 and 3689, which its
	// two category records (0 and 9999) do not include: a real unknown-id case.
	if _, err := LoadCOCO(path, COCOOptions{}); err == nil || !strings.Contains(err.Error(), "unknown category id 3938") {
		t.Fatalf("err = %v, want unknown category id 3938", err)
	}
	ds, err := LoadCOCO(path, COCOOptions{Categories: realCategories(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Images) != 2 || len(ds.Categories) != 2 {
		t.Fatalf("%d images %d categories", len(ds.Images), len(ds.Categories))
	}
	want := Image{ID: 2686843, FileName: "val/03938_Animalia_Chordata_Aves_Passeriformes_Meliphagidae_Ptilotula_penicillata/df8edd4c-fbb4-4886-8600-a429e5efac23.jpg", CategoryID: 3938}
	if ds.Images[0] != want {
		t.Errorf("image 0 = %+v", ds.Images[0])
	}
	if ds.Categories[1].ImageDirName != "09999_Plantae_Tracheophyta_Polypodiopsida_Schizaeales_Lygodiaceae_Lygodium_japonicum" {
		t.Errorf("category 9999 = %+v", ds.Categories[1])
	}
}

const cocoHead = `{"info":{"year":2021},"categories":[{"id":1,"name":"A b"},{"id":2,"name":"C d"}],`

func TestReadCOCO(t *testing.T) {
	good := cocoHead + `"images":[{"id":10,"file_name":"train/x/a.jpg","latitude":null,"width":5},{"id":11,"file_name":"train/x/b.jpg"},{"id":12,"file_name":"test/c.jpg"}],
	"annotations":[{"id":1,"image_id":11,"category_id":2},{"id":2,"image_id":10,"category_id":1}],"licenses":[{"id":1,"name":"x","url":"y"}]}`
	ds, err := ReadCOCO(strings.NewReader(good), COCOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Image{{10, "train/x/a.jpg", 1}, {11, "train/x/b.jpg", 2}, {12, "test/c.jpg", -1}}
	if !reflect.DeepEqual(ds.Images, want) {
		t.Fatalf("images %+v", ds.Images)
	}
	bad := []struct{ name, in, want string }{
		{"corrupt", cocoHead + `"images":[{"id":10,"file_name":"a.jpg"},{"id":11 "file_name":"b.jpg"}]}`, "corrupt JSON at byte 131"},
		{"truncated", cocoHead + `"images":[{"id":10,"file_name":"a.jpg"}`, "truncated"},
		{"not an object", `[1,2]`, "top level"},
		{"images not array", `{"images":{}}`, "want an array"},
		{"no images", `{"categories":[]}`, `no "images"`},
		{"duplicate image id", cocoHead + `"images":[{"id":10,"file_name":"a.jpg"},{"id":10,"file_name":"b.jpg"}]}`, "duplicate image id 10"},
		{"unknown category", cocoHead + `"images":[{"id":10,"file_name":"a.jpg"}],"annotations":[{"image_id":10,"category_id":99}]}`, "unknown category id 99"},
		{"unknown image", cocoHead + `"images":[{"id":10,"file_name":"a.jpg"}],"annotations":[{"image_id":9,"category_id":1}]}`, "unknown image id 9"},
		{"annotated twice", cocoHead + `"images":[{"id":10,"file_name":"a.jpg"}],"annotations":[{"image_id":10,"category_id":1},{"image_id":10,"category_id":2}]}`, "annotated twice"},
		{"empty file name", `{"images":[{"id":10,"file_name":""}]}`, "empty file_name"},
		{"float id", `{"images":[{"id":1.5,"file_name":"a"}]}`, "not an integer"},
		{"trailing data", `{"images":[]} {}`, "data after"},
		{"duplicate category", `{"images":[],"categories":[{"id":1},{"id":1}]}`, "duplicate category id 1"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCOCO(strings.NewReader(tc.in), COCOOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestLoadCOCOCompressed(t *testing.T) {
	body := []byte(cocoHead + `"images":[{"id":10,"file_name":"train/x/a.jpg"}],"annotations":[{"image_id":10,"category_id":2}]}`)
	dir := t.TempDir()
	var gz, tgz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	zw.Close()
	zw = gzip.NewWriter(&tgz)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "README", Typeflag: tar.TypeReg, Size: 2, Mode: 0o644})
	tw.Write([]byte("hi"))
	tw.WriteHeader(&tar.Header{Name: "train.json", Typeflag: tar.TypeReg, Size: int64(len(body)), Mode: 0o644})
	tw.Write(body)
	tw.Close()
	zw.Close()
	for name, data := range map[string][]byte{"train.json": body, "train.json.gz": gz.Bytes(), "train.json.tar.gz": tgz.Bytes()} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			os.WriteFile(p, data, 0o644)
			ds, err := LoadCOCO(p, COCOOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(ds.Images) != 1 || ds.Images[0].CategoryID != 2 {
				t.Fatalf("images %+v", ds.Images)
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	c := Category{ID: 5, Name: "Callinectes sapidus", CommonName: "Common Blue Crab", Supercategory: "Animalia", Genus: "Callinectes"}
	cases := []struct {
		name, tmpl string
		omit       []string
		want, err  string
	}{
		{"default", DefaultTemplate, DefaultOmit, "A photo of the Common Blue Crab Callinectes sapidus", ""},
		{"no omit", DefaultTemplate, nil, "A photo of the Common Blue Crab Animalia Callinectes sapidus", ""},
		{"id and genus", "{id}: {genus}", nil, "5: Callinectes", ""},
		{"spaces in braces", "{ genus }", nil, "Callinectes", ""},
		{"unknown field", "{colour}", nil, "", "unknown field {colour}"},
		{"unclosed", "a {name", nil, "", "unclosed"},
		{"nested", "a {na{me}}", nil, "", "unclosed"},
		{"unmatched close", "a }", nil, "", "unmatched"},
		{"bad omit", DefaultTemplate, []string{"colour=red"}, "", "omit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := ParseTemplate(tc.tmpl, tc.omit)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tmpl.Render(&c); got != tc.want {
				t.Fatalf("got %q want %q", got, tc.want)
			}
		})
	}
}

func TestSelectFields(t *testing.T) {
	cats := []Category{
		{ID: 1, Name: "A a", CommonName: "Fox", Supercategory: "Mammals", Genus: "A"},
		{ID: 2, Name: "A b", CommonName: "Fox", Supercategory: "Mammals", Genus: "A"},
		{ID: 3, Name: "B c", CommonName: "Owl", Supercategory: "Birds", Genus: "B"},
	}
	cases := []struct {
		name       string
		candidates []string
		want       []string
		distinct   int
	}{
		{"name alone separates", nil, []string{"name"}, 3},
		{"two fields needed", []string{"common_name", "genus", "specific_epithet"}, []string{"specific_epithet"}, 3},
		{"none separates", []string{"common_name", "genus"}, []string{"common_name"}, 2},
	}
	cats[0].SpecificEpithet, cats[1].SpecificEpithet, cats[2].SpecificEpithet = "a", "b", "c"
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SelectFields(cats, tc.candidates, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Fields, tc.want) || got.Distinct != tc.distinct {
				t.Fatalf("got %+v, want %v with %d distinct", got, tc.want, tc.distinct)
			}
		})
	}
	// Two fields: common name alone repeats, common name + supercategory too;
	// the smallest separating set in preference order is chosen.
	cats2 := []Category{{ID: 1, CommonName: "Fox", Genus: "A"}, {ID: 2, CommonName: "Fox", Genus: "B"}, {ID: 3, CommonName: "Owl", Genus: "A"}}
	got, err := SelectFields(cats2, []string{"common_name", "genus"}, nil)
	if err != nil || !reflect.DeepEqual(got.Fields, []string{"common_name", "genus"}) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestClassesRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "classes.json")
	in := []Class{NewClass(Category{ID: 9, Name: "B b", Genus: "B", Kingdom: "Plantae"}, "A photo of the B b"),
		NewClass(Category{ID: 2, Name: "A a", Supercategory: "Birds"}, "A photo of the Birds A a")}
	if err := WriteClasses(path, in); err != nil {
		t.Fatal(err)
	}
	out, err := LoadClasses(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].ID != 2 || !reflect.DeepEqual(out[1], in[0]) {
		t.Fatalf("got %+v", out)
	}
	if out[1].Taxon("kingdom") != "Plantae" || out[1].Taxon("species") != "B b" || out[1].Taxon("tribe") != "" {
		t.Errorf("taxon lookups wrong: %+v", out[1])
	}
	os.WriteFile(path, []byte(`[{"id":1,"caption":"x"},{"id":1,"caption":"y"}]`), 0o644)
	if _, err := LoadClasses(path); err == nil || !strings.Contains(err.Error(), "duplicate id 1") {
		t.Errorf("duplicate ids: err = %v", err)
	}
}
