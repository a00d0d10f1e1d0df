package caption

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/litcache/litcache/internal/atomicfile"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/report"
)

// Recipe names with a meaning of their own; any other recipe is a template
// with {field} placeholders.
const (
	RecipePaper = "paper" // the paper's template, inat.DefaultTemplate (with Config.Omit)
	RecipeAuto  = "auto"  // the smallest field set giving every class its own caption (--fields auto)
)

// Files of a recipes folder.
const (
	RecipesJSON     = "recipes.json"
	RecipesMarkdown = "recipes.md"
)

// RecipeResult is one recipe's classes file and how well it tells the
// classes apart.
type RecipeResult struct {
	inat.Recipe
	Dir         string `json:"dir"`          // the recipe's folder under the output folder
	ClassesFile string `json:"classes_file"` // its classes.json
	// Largest is the most classes one caption stands for (1: all distinct).
	Largest int `json:"largest_group"`
	// Example is one caption of the recipe (the first class's).
	Example string `json:"example"`
}

// ParseRecipes splits a ";"-separated recipe list ("paper;{name};auto"),
// refusing an empty one or the same recipe twice.
func ParseRecipes(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, r := range strings.Split(list, ";") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if seen[r] {
			return nil, fmt.Errorf("caption: --recipes lists %q twice", r)
		}
		seen[r] = true
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("caption: --recipes %q holds no recipe", list)
	}
	return out, nil
}

// Recipes writes one classes.json per recipe under cfg.Out (OUT/NAME/
// classes.json with its classes.recipe.json; NAME is the recipe's folder:
// "paper", "auto", or the template's fields, "common_name-name"), and
// OUT/recipes.json and recipes.md: the table of how many classes each
// recipe leaves indistinct. Only metadata is read: captions are per class,
// so a new recipe needs no image and no re-extraction.
func Recipes(cfg Config, recipes []string) ([]RecipeResult, error) {
	if err := cfg.validate(false); err != nil {
		return nil, err
	}
	if cfg.Out == "" {
		return nil, fmt.Errorf("caption: no output folder (--out)")
	}
	if len(recipes) == 0 {
		return nil, fmt.Errorf("caption: no recipe")
	}
	md, err := loadMetadata(&cfg, false)
	if err != nil {
		return nil, err
	}
	var out []RecipeResult
	used := map[string]bool{}
	for _, r := range recipes {
		rc := cfg
		rc.Template, rc.Fields = "", nil
		switch r {
		case RecipePaper:
			rc.Template = inat.DefaultTemplate
		case RecipeAuto:
			rc.Fields = []string{"auto"}
		default:
			if !strings.Contains(r, "{") {
				return nil, fmt.Errorf("caption: recipe %q is neither %q, %q nor a template with {field} placeholders (%s)",
					r, RecipePaper, RecipeAuto, strings.Join(inat.Fields, ", "))
			}
			rc.Template = r
		}
		tmpl, auto, err := buildTemplate(&rc, md.cats)
		if err != nil {
			return nil, fmt.Errorf("caption: recipe %q: %w", r, err)
		}
		captions, distinct := tmpl.Captions(md.cats)
		classes := make([]inat.Class, len(md.cats))
		for i, c := range md.cats {
			classes[i] = inat.NewClass(c, captions[i])
		}
		res := RecipeResult{Recipe: inat.Recipe{Name: r, Template: tmpl.String(), Omit: rc.Omit, Classes: len(classes),
			DistinctCaptions: distinct, Indistinct: inat.Indistinct(captions)}}
		if auto != nil {
			res.Fields = auto.Fields
		}
		res.Largest = largestGroup(captions)
		if len(captions) > 0 {
			res.Example = captions[0]
		}
		name := recipeFolder(r)
		for k := 2; used[name]; k++ {
			name = fmt.Sprintf("%s-%d", recipeFolder(r), k)
		}
		used[name] = true
		res.Dir = filepath.Join(cfg.Out, name)
		res.ClassesFile = filepath.Join(res.Dir, "classes.json")
		if err := os.MkdirAll(res.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("caption: %w", err)
		}
		if err := inat.WriteClasses(res.ClassesFile, classes); err != nil {
			return nil, fmt.Errorf("caption: recipe %q: %w", r, err)
		}
		if err := inat.WriteRecipe(res.ClassesFile, res.Recipe); err != nil {
			return nil, fmt.Errorf("caption: recipe %q: %w", r, err)
		}
		out = append(out, res)
	}
	if err := writeRecipeTable(cfg.Out, out); err != nil {
		return nil, err
	}
	return out, nil
}

// largestGroup is the most classes sharing one caption.
func largestGroup(captions []string) int {
	n, best := map[string]int{}, 0
	for _, c := range captions {
		n[c]++
		best = max(best, n[c])
	}
	return best
}

// recipeFolder names a recipe's folder: the recipe's own name, or the
// template's fields joined by "-" ("{common_name} {name}" →
// "common_name-name"), with its literal words first when it has any
// ("A photo of {name}" → "a-photo-of-name").
func recipeFolder(recipe string) string {
	if recipe == RecipePaper || recipe == RecipeAuto {
		return recipe
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(recipe) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	if b.Len() == 0 {
		return "recipe"
	}
	return b.String()
}

// RecipeTable is the recipes' comparison: how many classes each leaves
// indistinct (zero-shot cannot tell classes sharing a caption apart).
func RecipeTable(rs []RecipeResult) report.Table {
	t := report.Table{Header: []string{"recipe", "folder", "template", "classes", "distinct captions", "indistinct classes", "largest group", "example"},
		Right: []bool{false, false, false, true, true, true, true, false}}
	for _, r := range rs {
		tmpl := r.Template
		if len(r.Fields) > 0 {
			tmpl += " (fields " + strings.Join(r.Fields, ", ") + ")"
		}
		t.AddRow(r.Name, filepath.Base(r.Dir), tmpl, fmt.Sprint(r.Classes), fmt.Sprint(r.DistinctCaptions),
			fmt.Sprint(r.Indistinct), fmt.Sprint(r.Largest), r.Example)
	}
	return t
}

func writeRecipeTable(dir string, rs []RecipeResult) error {
	b, err := json.MarshalIndent(rs, "", " ")
	if err != nil {
		return fmt.Errorf("caption: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, RecipesJSON), append(b, '\n')); err != nil {
		return fmt.Errorf("caption: %w", err)
	}
	md := "# Caption recipes\n\nClasses sharing a caption are indistinct to a zero-shot classifier built from the captions.\n\n" +
		RecipeTable(rs).Markdown()
	if err := atomicfile.WriteFile(filepath.Join(dir, RecipesMarkdown), []byte(md)); err != nil {
		return fmt.Errorf("caption: %w", err)
	}
	return nil
}
