// Package synth generates a synthetic mini-iNat: N species with a generated
// taxonomy (kingdom → species, plausible Latin binomials, common names, the
// real iNat2021 supercategory names) and procedurally drawn JPEG photos whose
// look follows the taxonomy — background colour by class, shape by order and
// family, colour and texture by genus and species — varied per image. It is
// written in iNat2021's layout (train.json / val.json COCO style, images
// under train/{image_dir_name}/{uuid}.jpg, categories.csv) and feeds the demo
// and the tests. Everything is deterministic for a seed.
package synth

import (
	"fmt"
	"math/rand"
	"strings"

	"github.com/litcache/litcache/internal/inat"
)

// lineage is the fixed top of the tree for one supercategory: kingdom,
// phylum and candidate classes as iNat2021 names them.
type lineage struct {
	super, kingdom, phylum string
	classes                []string
	plantLike              bool // orders end in -ales and families in -aceae
	nouns                  []string
}

// lineages lists the 11 iNat2021 supercategories, largest first.
var lineages = []lineage{
	{"Plants", "Plantae", "Tracheophyta", []string{"Magnoliopsida", "Liliopsida", "Polypodiopsida", "Pinopsida"}, true,
		[]string{"Fern", "Sedge", "Lily", "Aster", "Clover", "Pine", "Sage", "Orchid", "Thistle", "Violet"}},
	{"Insects", "Animalia", "Arthropoda", []string{"Insecta"}, false,
		[]string{"Moth", "Beetle", "Skipper", "Dragonfly", "Bee", "Wasp", "Katydid", "Fly"}},
	{"Birds", "Animalia", "Chordata", []string{"Aves"}, false,
		[]string{"Warbler", "Sparrow", "Hawk", "Heron", "Finch", "Owl", "Wren", "Tanager"}},
	{"Fungi", "Fungi", "Basidiomycota", []string{"Agaricomycetes", "Lecanoromycetes"}, true,
		[]string{"Bolete", "Bracket", "Puffball", "Lichen", "Waxcap", "Oakmoss"}},
	{"Reptiles", "Animalia", "Chordata", []string{"Reptilia"}, false,
		[]string{"Skink", "Gecko", "Racer", "Turtle", "Anole", "Rattlesnake"}},
	{"Mammals", "Animalia", "Chordata", []string{"Mammalia"}, false,
		[]string{"Shrew", "Squirrel", "Bat", "Vole", "Deer", "Fox"}},
	{"Ray-finned Fishes", "Animalia", "Chordata", []string{"Actinopterygii"}, false,
		[]string{"Darter", "Wrasse", "Goby", "Minnow", "Perch"}},
	{"Amphibians", "Animalia", "Chordata", []string{"Amphibia"}, false,
		[]string{"Treefrog", "Salamander", "Toad", "Newt"}},
	{"Mollusks", "Animalia", "Mollusca", []string{"Gastropoda", "Bivalvia"}, false,
		[]string{"Snail", "Slug", "Mussel", "Nudibranch"}},
	{"Arachnids", "Animalia", "Arthropoda", []string{"Arachnida"}, false,
		[]string{"Orbweaver", "Jumping Spider", "Harvestman", "Tick"}},
	{"Animalia", "Animalia", "Echinodermata", []string{"Echinoidea", "Asteroidea"}, false,
		[]string{"Sea Urchin", "Sea Star", "Sand Dollar"}},
}

var (
	syllables = []string{"ba", "ca", "cor", "da", "e", "fla", "ga", "hal", "i", "lo", "ma", "ne", "o", "pha",
		"pte", "ra", "sa", "the", "to", "u", "ve", "xan", "za", "bu", "cte", "dro", "mi", "phy", "rhi", "sto"}
	genusEnds = []string{"us", "a", "ia", "is", "on", "ella", "ops", "ura", "ites", "ax"}
	epithets  = []string{"vulgaris", "minor", "major", "rubra", "alba", "nigra", "aurea", "virens", "maculata",
		"striata", "montana", "palustris", "silvestris", "occidentalis", "borealis", "gracilis", "robusta",
		"elegans", "punctata", "lutea", "caerulea", "cristata", "pallida", "variegata"}
	adjectives = []string{"Crimson", "Golden", "Spotted", "Banded", "Northern", "Western", "Lesser", "Greater",
		"Azure", "Scarlet", "Dusky", "Pale", "Marsh", "Mountain", "Coastal", "Striped", "Ochre", "Silver",
		"Common", "Hairy", "Pine", "Desert", "Velvet", "Ruby-throated"}
)

// latinStem makes a capitalised pseudo-Latin stem of 2–3 syllables.
func latinStem(rng *rand.Rand) string {
	n := 2 + rng.Intn(2)
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(syllables[rng.Intn(len(syllables))])
	}
	s := b.String()
	return strings.ToUpper(s[:1]) + s[1:]
}

// joinLatin appends a Latin ending to a stem, eliding a doubled vowel
// ("Gazaba" + "a" → "Gazaba", not "Gazabaa").
func joinLatin(stem, end string) string {
	vowel := func(b byte) bool { return strings.IndexByte("aeiou", b) >= 0 }
	if end != "" && vowel(stem[len(stem)-1]) && vowel(end[0]) {
		stem = stem[:len(stem)-1]
	}
	return stem + end
}

// node is one taxon below class in the generated tree.
type node struct {
	name     string
	children []*node
}

// pick returns an existing child with probability reuse (when there is one),
// else a new child named by mk (retrying on a clash with a sibling name).
func (n *node) pick(rng *rand.Rand, reuse float64, mk func() string, used map[string]bool) *node {
	if len(n.children) > 0 && rng.Float64() < reuse {
		return n.children[rng.Intn(len(n.children))]
	}
	for {
		name := mk()
		if !used[name] {
			used[name] = true
			c := &node{name: name}
			n.children = append(n.children, c)
			return c
		}
	}
}

// Taxonomy generates n categories with ids 0..n-1. Supercategories are dealt
// round-robin in the order of iNat2021's sizes so that a few species already
// span several; within a class, species share orders, families and genera
// often enough for the higher ranks to mean something.
func Taxonomy(n int, seed int64) []inat.Category {
	rng := rand.New(rand.NewSource(seed))
	roots := map[string]*node{} // "super/class" → tree of orders
	used := map[string]bool{}   // taxon names, unique across ranks
	usedSpecies := map[string]bool{}
	usedCommon := map[string]bool{}
	cats := make([]inat.Category, n)
	for i := range cats {
		lin := lineages[i%len(lineages)]
		class := lin.classes[rng.Intn(len(lin.classes))]
		key := lin.super + "/" + class
		root := roots[key]
		if root == nil {
			root = &node{name: class}
			roots[key] = root
		}
		orderEnd, familyEnd := "iformes", "idae"
		if lin.plantLike {
			orderEnd, familyEnd = "ales", "aceae"
		}
		order := root.pick(rng, 0.6, func() string { return joinLatin(latinStem(rng), orderEnd) }, used)
		family := order.pick(rng, 0.5, func() string { return joinLatin(latinStem(rng), familyEnd) }, used)
		genus := family.pick(rng, 0.4, func() string { return joinLatin(latinStem(rng), genusEnds[rng.Intn(len(genusEnds))]) }, used)
		var epithet, name string
		for {
			epithet = epithets[rng.Intn(len(epithets))]
			name = genus.name + " " + epithet
			if !usedSpecies[name] {
				usedSpecies[name] = true
				break
			}
		}
		var common string
		for try := 0; ; try++ {
			common = adjectives[rng.Intn(len(adjectives))] + " " + lin.nouns[rng.Intn(len(lin.nouns))]
			if try > 20 {
				common = adjectives[rng.Intn(len(adjectives))] + " " + common
			}
			if !usedCommon[common] {
				usedCommon[common] = true
				break
			}
		}
		c := inat.Category{ID: i, Name: name, CommonName: common, Supercategory: lin.super,
			Kingdom: lin.kingdom, Phylum: lin.phylum, Class: class, Order: order.name, Family: family.name,
			Genus: genus.name, SpecificEpithet: epithet}
		c.ImageDirName = fmt.Sprintf("%05d_%s_%s_%s_%s_%s_%s_%s", c.ID, c.Kingdom, c.Phylum, c.Class, c.Order,
			c.Family, c.Genus, c.SpecificEpithet)
		cats[i] = c
	}
	return cats
}
