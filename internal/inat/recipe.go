package inat

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/litcache/litcache/internal/atomicfile"
)

// Recipe is how a classes.json was captioned: the caption stage writes it
// beside the file as NAME.recipe.json (classes.json → classes.recipe.json),
// so that a sweep over caption recipes can say which template each classes
// file holds without the classes file changing its format.
type Recipe struct {
	// Name is the recipe as asked ("paper", "auto", or the template itself).
	Name string `json:"name"`
	// Template made the captions; Omit lists the field=value pairs left out.
	Template string   `json:"template"`
	Omit     []string `json:"omit,omitempty"`
	// Fields is the field set --fields (or the "auto" recipe) chose.
	Fields []string `json:"fields,omitempty"`
	// Classes, DistinctCaptions and Indistinct (classes whose caption
	// another class shares: zero-shot cannot tell them apart).
	Classes          int `json:"classes"`
	DistinctCaptions int `json:"distinct_captions"`
	Indistinct       int `json:"indistinct_classes"`
}

// RecipePath is the recipe file beside a classes file.
func RecipePath(classesPath string) string {
	return strings.TrimSuffix(classesPath, ".json") + ".recipe.json"
}

// WriteRecipe writes r beside the classes file (atomically).
func WriteRecipe(classesPath string, r Recipe) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return fmt.Errorf("inat: recipe: %w", err)
	}
	if err := atomicfile.WriteFile(RecipePath(classesPath), append(b, '\n')); err != nil {
		return fmt.Errorf("inat: recipe: %w", err)
	}
	return nil
}

// ReadRecipe reads the recipe beside a classes file.
func ReadRecipe(classesPath string) (Recipe, error) {
	var r Recipe
	path := RecipePath(classesPath)
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("inat: recipe: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("inat: recipe %s: %w", path, err)
	}
	return r, nil
}

// Indistinct counts the classes whose caption at least one other class
// shares.
func Indistinct(captions []string) int {
	n := map[string]int{}
	for _, c := range captions {
		n[c]++
	}
	k := 0
	for _, c := range captions {
		if n[c] > 1 {
			k++
		}
	}
	return k
}
