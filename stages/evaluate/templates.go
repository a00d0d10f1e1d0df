package evaluate

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/litcache/litcache/internal/inat"
)

// CaptionTemplates is the caption template: each class is represented by the
// caption it was tuned on (classes.json "caption"), as in the LiT-on-iNat setup.
var CaptionTemplates = []string{"{caption}"}

// OpenAITemplates are the 80 prompts OpenAI wrote for zero-shot ImageNet
// (CLIP's Prompt_Engineering_for_ImageNet notebook; OpenCLIP's
// OPENAI_IMAGENET_TEMPLATES). "{}" stands for the class's subject (see
// ExpandTemplate); the embeddings of all 80 are averaged per class.
var OpenAITemplates = []string{
	"a bad photo of a {}.",
	"a photo of many {}.",
	"a sculpture of a {}.",
	"a photo of the hard to see {}.",
	"a low resolution photo of the {}.",
	"a rendering of a {}.",
	"graffiti of a {}.",
	"a bad photo of the {}.",
	"a cropped photo of the {}.",
	"a tattoo of a {}.",
	"the embroidered {}.",
	"a photo of a hard to see {}.",
	"a bright photo of a {}.",
	"a photo of a clean {}.",
	"a photo of a dirty {}.",
	"a dark photo of the {}.",
	"a drawing of a {}.",
	"a photo of my {}.",
	"the plastic {}.",
	"a photo of the cool {}.",
	"a close-up photo of a {}.",
	"a black and white photo of the {}.",
	"a painting of the {}.",
	"a painting of a {}.",
	"a pixelated photo of the {}.",
	"a sculpture of the {}.",
	"a bright photo of the {}.",
	"a cropped photo of a {}.",
	"a plastic {}.",
	"a photo of the dirty {}.",
	"a jpeg corrupted photo of a {}.",
	"a blurry photo of the {}.",
	"a photo of the {}.",
	"a good photo of the {}.",
	"a rendering of the {}.",
	"a {} in a video game.",
	"a photo of one {}.",
	"a doodle of a {}.",
	"a close-up photo of the {}.",
	"a photo of a {}.",
	"the origami {}.",
	"the {} in a video game.",
	"a sketch of a {}.",
	"a doodle of the {}.",
	"a origami {}.",
	"a low resolution photo of a {}.",
	"the toy {}.",
	"a rendition of the {}.",
	"a photo of the clean {}.",
	"a photo of a large {}.",
	"a rendition of a {}.",
	"a photo of a nice {}.",
	"a photo of a weird {}.",
	"a blurry photo of a {}.",
	"a cartoon {}.",
	"art of a {}.",
	"a sketch of the {}.",
	"a embroidered {}.",
	"a pixelated photo of a {}.",
	"itap of the {}.",
	"a jpeg corrupted photo of the {}.",
	"a good photo of a {}.",
	"a plushie {}.",
	"a photo of the nice {}.",
	"a photo of the small {}.",
	"a photo of the weird {}.",
	"the cartoon {}.",
	"art of the {}.",
	"a drawing of the {}.",
	"a photo of the large {}.",
	"a black and white photo of a {}.",
	"the plushie {}.",
	"a dark photo of a {}.",
	"itap of a {}.",
	"graffiti of the {}.",
	"a toy {}.",
	"itap of my {}.",
	"a photo of a cool {}.",
	"a photo of a small {}.",
	"a tattoo of the {}.",
}

// TemplateFields are the names a template may use inside braces.
var TemplateFields = []string{"caption", "name", "common_name", "supercategory",
	"kingdom", "phylum", "class", "order", "family", "genus", "specific_epithet", "species"}

// Subject is what "{}" in a template stands for: the class's common name,
// falling back to its scientific name when it has none.
func Subject(c inat.Class) string {
	if s := strings.TrimSpace(c.CommonName); s != "" {
		return s
	}
	return c.Name
}

// field returns the value of a template field for c: "" is the Subject,
// "caption" the class's caption, any other name a category field.
func field(c inat.Class, name string) (string, bool) {
	switch name {
	case "":
		return Subject(c), true
	case "caption":
		return c.Caption, true
	}
	cat := c.Category()
	return cat.Field(name)
}

// ExpandTemplate fills a template for one class: "{}" is the class's Subject,
// "{field}" one of TemplateFields, "{{" and "}}" literal braces. Whitespace
// runs left by empty fields are collapsed.
func ExpandTemplate(tmpl string, c inat.Class) (string, error) {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		ch := tmpl[i]
		switch {
		case ch == '{' && i+1 < len(tmpl) && tmpl[i+1] == '{':
			b.WriteByte('{')
			i++
		case ch == '}' && i+1 < len(tmpl) && tmpl[i+1] == '}':
			b.WriteByte('}')
			i++
		case ch == '{':
			end := strings.IndexByte(tmpl[i+1:], '}')
			if end < 0 {
				return "", fmt.Errorf("evaluate: template %q: unclosed '{'", tmpl)
			}
			name := tmpl[i+1 : i+1+end]
			v, ok := field(c, name)
			if !ok {
				return "", fmt.Errorf("evaluate: template %q: unknown field {%s} (known: {}, {%s})",
					tmpl, name, strings.Join(TemplateFields, "}, {"))
			}
			b.WriteString(v)
			i += end + 1
		case ch == '}':
			return "", fmt.Errorf("evaluate: template %q: '}' without '{' (write '}}' for a brace)", tmpl)
		default:
			b.WriteByte(ch)
		}
	}
	return strings.Join(strings.Fields(b.String()), " "), nil
}

// ParseTemplates reads templates one per line; blank lines and lines starting
// with '#' are skipped. Each template is checked against a sample class, so a
// typo in a field name is reported with its line number.
func ParseTemplates(data []byte) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	probe := inat.Class{Name: "x", CommonName: "x", Caption: "x"}
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if _, err := ExpandTemplate(t, probe); err != nil {
			return nil, fmt.Errorf("evaluate: templates line %d: %w", line, err)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("evaluate: templates: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("evaluate: templates: no template (one per line, {} or {field} placeholders)")
	}
	return out, nil
}

// ResolveTemplates turns a --templates value into templates: "caption",
// "openai", or the path of a file read by ParseTemplates.
func ResolveTemplates(spec string) ([]string, error) {
	switch spec {
	case "", "caption":
		return CaptionTemplates, nil
	case "openai":
		return OpenAITemplates, nil
	}
	data, err := os.ReadFile(spec)
	if err != nil {
		return nil, fmt.Errorf("evaluate: templates %q (want caption, openai or a file): %w", spec, err)
	}
	t, err := ParseTemplates(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, spec)
	}
	return t, nil
}

// WithSubject rewrites "{}" in each template as "{field}", so that the OpenAI
// prompts name a class by another field than its common name ("name" for the
// scientific name, "caption" for the whole caption). field "" or
// "common_name" keeps the templates as they are ({} = Subject).
func WithSubject(templates []string, field string) ([]string, error) {
	if field == "" || field == "common_name" {
		return templates, nil
	}
	if !knownField(field) {
		return nil, fmt.Errorf("evaluate: subject field %q unknown (known: %s)", field, strings.Join(TemplateFields, ", "))
	}
	out := make([]string, len(templates))
	for i, t := range templates {
		var b strings.Builder
		for j := 0; j < len(t); j++ {
			switch {
			case j+1 < len(t) && (t[j:j+2] == "{{" || t[j:j+2] == "}}"):
				b.WriteString(t[j : j+2])
				j++
			case j+1 < len(t) && t[j:j+2] == "{}":
				b.WriteString("{" + field + "}")
				j++
			default:
				b.WriteByte(t[j])
			}
		}
		out[i] = b.String()
	}
	return out, nil
}

func knownField(name string) bool {
	for _, f := range TemplateFields {
		if f == name {
			return true
		}
	}
	return false
}
