package tune

import (
	"fmt"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
)

// The text tower's embed_dim meets the image tower's feature size: a cache
// of DINOv2-B/14 embeddings is 768 wide (1536 with cls+mean), Swin-T's 768,
// and the text model's config may say otherwise (ViT-B-32's 512). Without an
// image head (which maps D to E itself):
//   - a randomly initialised text tower takes the cache's dim: only its
//     text_projection's shape changes, and nothing trained is lost;
//   - a pretrained one keeps its projection, so a mismatch is an error
//     naming both dims, unless NewProjection: the pretrained transformer
//     with a fresh text_projection (W → D, OpenCLIP's N(0, W^-½)), as LiT
//     puts a new head on a pretrained text model (arXiv 2111.07991 §3).
//
// The run's model config then holds the cache's dim, so its checkpoints and
// final/ are a text tower of that dim, loadable as they are.

// randomText reports whether the text tower starts from a random initialisation.
func (c Config) randomText() bool {
	_, random, _ := clip.ParseRandomWeights(c.Weights)
	return c.Weights == "" || random
}

// FitTextModel returns the text model config a run of cfg trains against a
// cache of dim D, m being cfg.Model's config, and a note for the log (""
// when unchanged); the error names both dims. A sweep asks it of every
// member before the first one trains.
func FitTextModel(cfg Config, m clip.Config, D int) (clip.Config, string, error) {
	switch {
	case cfg.ImageHead || (D == m.EmbedDim && !cfg.NewProjection):
		return m, "", nil
	case cfg.randomText():
		note := fmt.Sprintf("tune: random-init text tower embeds to the cache's dim %d (the model config %s says embed_dim %d)", D, cfg.Model, m.EmbedDim)
		m.EmbedDim = D
		return m, note, nil
	case cfg.NewProjection:
		note := fmt.Sprintf("tune: text tower from %s with a fresh text_projection %d → %d (the cache's dim; the file's projects to %d)", cfg.Weights, m.Text.Width, D, m.EmbedDim)
		m.EmbedDim = D
		return m, note, nil
	default:
		return m, "", fmt.Errorf("tune: the cache's embeddings are %d wide, but the pretrained text tower (--weights %s, --model %s) projects to embed_dim %d: "+
			"use --new-projection (a fresh %d → %d text projection on the pretrained transformer), --image-head, or a cache of dim %d",
			D, cfg.Weights, cfg.Model, m.EmbedDim, m.Text.Width, D, m.EmbedDim)
	}
}

// withNewProjection loads the pretrained text tower of pretrained (the text
// model as --model gives it, which the file's tensors fit) and returns a
// tower of m (the run's config: embed_dim D) holding all its weights but
// text_projection, which is OpenCLIP's random init from seed.
func withNewProjection(be backend.Backend, pretrained, m clip.Config, path string, seed int64) (*clip.TextTower, error) {
	old, err := clip.LoadTextTower(be, pretrained, path)
	if err != nil {
		return nil, err
	}
	defer old.Free()
	src := map[string]backend.Tensor{}
	for _, p := range old.Params() {
		src[p.Name] = p.Value
	}
	fresh := clip.NewRandomTextTower(be, m, seed)
	for _, p := range fresh.Params() {
		if p.Name == "text_projection" {
			continue
		}
		v, ok := src[p.Name]
		if !ok || v.Len() != p.Value.Len() {
			fresh.Free()
			return nil, fmt.Errorf("tune: --new-projection: the pretrained tower's %s does not fit", p.Name)
		}
		be.Copy(p.Value, v)
	}
	return fresh, nil
}
