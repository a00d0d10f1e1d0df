package caption

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/litcache/litcache/internal/tokenizer"
)

// Preview returns "ID<TAB>caption" lines for the given category ids; an
// unknown id is an error naming it. Only metadata is read.
func Preview(cfg Config, ids []int) ([]string, error) {
	if err := cfg.validate(false); err != nil {
		return nil, err
	}
	md, err := loadMetadata(&cfg, false)
	if err != nil {
		return nil, err
	}
	tmpl, _, err := buildTemplate(&cfg, md.cats)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		c, ok := md.byID[id]
		if !ok {
			return nil, fmt.Errorf("caption: --preview: no category with id %d", id)
		}
		out = append(out, fmt.Sprintf("%d\t%s", id, tmpl.Render(c)))
	}
	return out, nil
}

// Stats is what --stats prints.
type Stats struct {
	Template         string
	Classes          int
	DistinctCaptions int
	Shared           [][]int // groups of class ids sharing one caption
	PerSupercategory map[string]int
	Images           int            // images in the json or folder tree (0 when not read)
	ImagesPerSuper   map[string]int // by the images' classes
	MinPerClass      int
	MaxPerClass      int
	// Token lengths (with start and end of text) when a vocabulary is given:
	// TokenHist[n] classes whose caption has n tokens.
	TokenHist   map[int]int
	MaxTokens   int
	OverContext int // captions longer than tokenizer.DefaultContext
}

// ComputeStats counts classes, captions and (when cfg has images) images;
// and it tokenizes every caption with the vocabulary file vocab ("" = CLIP's
// built-in bpe_simple_vocab_16e6.txt.gz) for the token-length histogram.
func ComputeStats(cfg Config, vocab string) (*Stats, error) {
	if err := cfg.validate(false); err != nil {
		return nil, err
	}
	withImages := cfg.JSON != "" || cfg.Images != ""
	md, err := loadMetadata(&cfg, withImages)
	if err != nil {
		return nil, err
	}
	tmpl, _, err := buildTemplate(&cfg, md.cats)
	if err != nil {
		return nil, err
	}
	caps, distinct := tmpl.Captions(md.cats)
	st := &Stats{Template: tmpl.String(), Classes: len(md.cats), DistinctCaptions: distinct,
		PerSupercategory: map[string]int{}, ImagesPerSuper: map[string]int{}}
	byCaption := map[string][]int{}
	for i, c := range md.cats {
		st.PerSupercategory[c.Supercategory]++
		byCaption[caps[i]] = append(byCaption[caps[i]], c.ID)
	}
	for _, ids := range byCaption {
		if len(ids) > 1 {
			st.Shared = append(st.Shared, ids)
		}
	}
	sort.Slice(st.Shared, func(i, j int) bool { return st.Shared[i][0] < st.Shared[j][0] })
	if md.images != nil {
		st.Images = len(md.images)
		per := map[int]int{}
		for _, im := range md.images {
			per[im.CategoryID]++
			if c, ok := md.byID[im.CategoryID]; ok {
				st.ImagesPerSuper[c.Supercategory]++
			}
		}
		st.MinPerClass = -1
		for _, c := range md.cats {
			n := per[c.ID]
			if st.MinPerClass < 0 || n < st.MinPerClass {
				st.MinPerClass = n
			}
			st.MaxPerClass = max(st.MaxPerClass, n)
		}
	}
	tok, err := tokenizer.Open(vocab)
	if err != nil {
		return nil, fmt.Errorf("caption: --vocab: %w", err)
	}
	st.TokenHist = map[int]int{}
	for _, c := range caps {
		n := len(tok.Encode(c)) + 2 // start and end of text
		st.TokenHist[n]++
		st.MaxTokens = max(st.MaxTokens, n)
		if n > tokenizer.DefaultContext {
			st.OverContext++
		}
	}
	return st, nil
}

// Print writes the statistics as a readable report.
func (st *Stats) Print(w io.Writer) {
	fmt.Fprintf(w, "template           %q\n", st.Template)
	fmt.Fprintf(w, "classes            %d\n", st.Classes)
	fmt.Fprintf(w, "distinct captions  %d", st.DistinctCaptions)
	if st.DistinctCaptions < st.Classes {
		fmt.Fprintf(w, " (%d captions shared by several classes, e.g. ids %v)", len(st.Shared), st.Shared[0])
	}
	fmt.Fprintln(w)
	if st.Images > 0 {
		fmt.Fprintf(w, "images             %d (per class %d..%d)\n", st.Images, st.MinPerClass, st.MaxPerClass)
	}
	supers := make([]string, 0, len(st.PerSupercategory))
	for s := range st.PerSupercategory {
		supers = append(supers, s)
	}
	sort.Slice(supers, func(i, j int) bool {
		a, b := st.PerSupercategory[supers[i]], st.PerSupercategory[supers[j]]
		return a > b || a == b && supers[i] < supers[j]
	})
	fmt.Fprintf(w, "%-20s %8s", "supercategory", "classes")
	if st.Images > 0 {
		fmt.Fprintf(w, " %10s", "images")
	}
	fmt.Fprintln(w)
	for _, s := range supers {
		fmt.Fprintf(w, "%-20s %8d", s, st.PerSupercategory[s])
		if st.Images > 0 {
			fmt.Fprintf(w, " %10d", st.ImagesPerSuper[s])
		}
		fmt.Fprintln(w)
	}
	if st.TokenHist != nil {
		fmt.Fprintf(w, "caption length in CLIP tokens (with start/end of text): max %d, %d over the %d context\n",
			st.MaxTokens, st.OverContext, tokenizer.DefaultContext)
		lens := make([]int, 0, len(st.TokenHist))
		peak := 0
		for n, c := range st.TokenHist {
			lens = append(lens, n)
			peak = max(peak, c)
		}
		sort.Ints(lens)
		for _, n := range lens {
			c := st.TokenHist[n]
			bar := strings.Repeat("#", (c*50+peak-1)/peak)
			fmt.Fprintf(w, "%4d %7d %s\n", n, c, bar)
		}
	}
}
