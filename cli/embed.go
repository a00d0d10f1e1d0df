package cli

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/tokenizer"
)

func embedCommand() *cli.Command {
	return withRequired(&cli.Command{
		Name:  "embed",
		Usage: "run an image tower (CLIP, DINOv2, Swin) on images, and CLIP's text tower on texts: embeddings, a cosine table, or tensors to compare with PyTorch",
		UsageText: `litcache embed --model CONFIG --weights FILE|random:SEED [--pool P] [--image a.jpg ...] [--text "..." ...]
litcache embed --weights RUN [--image a.jpg ...] [--text "..." ...]
litcache embed --model CONFIG --weights FILE [--pixels in.safetensors] [--ids in.safetensors] --out out.safetensors`,
		Description: `Loads an image tower of any family the registry knows (a built-in name or a
config file: OpenCLIP/HF CLIP, DINOv2, torchvision Swin; weights under the
family's names) and, for a CLIP model, its text tower, and embeds:

  --image FILE   JPEG/PNG photos, preprocessed with the tower's eval transform
                 (OpenCLIP's for CLIP; resize, centre crop, ImageNet norm for DINOv2 and Swin)
  --text TEXT    captions, tokenized with CLIP's BPE (built in; --vocab for another file)
  --pixels FILE  a safetensors tensor pixel_values (B,3,S,S), already normalised
  --ids FILE     a safetensors tensor input_ids (B,T) of token ids

Texts need a CLIP model (DINOv2 and Swin have no text tower). With both
images and texts it prints the image×text cosine-similarity table, otherwise
one embedding per line (not normalised; --pool picks DINOv2's pooling). --out
writes image_embeds and text_embeds (float32) for comparison with a PyTorch
dump (--device cpu for the float32 CPU reference).
--weights random:SEED uses a random initialisation instead of a file.
A tuned model serves in either form: tune's final/open_clip_model.safetensors
is a full model (image tower + tuned text tower); one written with tune
--text-only holds the text tower alone, enough for --text and --ids. A tune run
folder as --weights (its final/, with its own config: no --model) gives images
the training cache's image tower in either form.

Examples:
   litcache embed --model ViT-B-32-quickgelu --weights open_clip_model.safetensors \
       --image junco.jpg --image owl.jpg --text "a photo of a junco" --text "a photo of an owl"
   litcache embed --model dinov2-vitb14 --weights dinov2_vitb14_pretrain.safetensors --pool cls+mean --image junco.jpg
   litcache embed --model open_clip_config.json --weights model.safetensors --device cpu \
       --pixels forward.safetensors --ids forward.safetensors --out ours.safetensors
   litcache embed --weights runs/lit --image junco.jpg --text "A photo of the Dark-eyed Junco Aves Junco hyemalis"`,
		Flags: append([]cli.Flag{
			embedModelFlag(),
			embedWeightsFlag(),
			poolFlag(),
			vocabFlag(" for --text"),
			&cli.StringSliceFlag{Name: "image", Usage: "image file to embed (repeatable)"},
			&cli.StringSliceFlag{Name: "text", Usage: "text to embed (repeatable)"},
			&cli.StringFlag{Name: "pixels", Usage: "safetensors file with pixel_values (B,3,S,S), CLIP-normalised"},
			&cli.StringFlag{Name: "ids", Usage: "safetensors file with input_ids (B,T) token ids"},
			&cli.StringFlag{Name: "out", Usage: "write image_embeds and text_embeds to this safetensors file"},
			&cli.IntFlag{Name: "batch-size", Value: 16, Usage: "images per tower call"},
		}, deviceFlags("float32 on the GPU")...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			images := len(c.StringSlice("image")) > 0 || c.String("pixels") != ""
			if err := checkDependencies(c,
				dependency{"vocab", len(c.StringSlice("text")) > 0, "without --text"},
				dependency{"batch-size", images, "without --image or --pixels"},
				dependency{"pool", images, "without --image or --pixels"},
			); err != nil {
				return err
			}
			dev, err := deviceFromFlags(c)
			if err != nil {
				return err
			}
			return runEmbed(c.App.Writer, embedOptions{
				model: c.String("model"), weights: c.String("weights"), pool: c.String("pool"), vocab: vocabPath(c),
				images: c.StringSlice("image"), texts: c.StringSlice("text"),
				pixels: c.String("pixels"), ids: c.String("ids"), out: c.String("out"), batch: c.Int("batch-size"),
				device: dev, log: c.App.ErrWriter,
			})
		},
	}, "weights")
}

// embedModelFlag is --model, which a run folder given as --weights supplies.
func embedModelFlag() *cli.StringFlag {
	f := towerModelFlag("for --text a CLIP model (both towers)")
	f.DefaultText = "a run folder's open_clip_config.json; else required"
	return f
}

// embedWeightsFlag is embed's --weights: a tower's file, a CLIP model in
// either of tune's forms, or a tune run folder.
func embedWeightsFlag() *cli.StringFlag {
	f := towerWeightsFlag("model weights")
	f.Usage += "; for CLIP also a full model or a text tower alone (tune --text-only), or a tune run folder"
	return f
}

type embedOptions struct {
	model, weights, pool, vocab string
	images, texts               []string
	pixels, ids, out            string
	batch                       int
	device                      deviceChoice
	// backend, when set, is used instead of opening --device (tests).
	backend backend.Backend
	log     io.Writer
}

func runEmbed(w io.Writer, o embedOptions) (err error) {
	// A device failure inside an op arrives as a panic carrying the op's
	// error (the backend interface has no error returns): an error here.
	defer cuda.Recover(&err)
	if len(o.images) == 0 && len(o.texts) == 0 && o.pixels == "" && o.ids == "" {
		return fmt.Errorf("embed: nothing to embed: give --image, --text, --pixels or --ids")
	}
	if (len(o.images) > 0 && o.pixels != "") || (len(o.texts) > 0 && o.ids != "") {
		return fmt.Errorf("embed: give images either as --image or as --pixels, texts either as --text or as --ids")
	}
	if o.batch <= 0 {
		return fmt.Errorf("embed: --batch-size %d must be positive", o.batch)
	}
	em, err := resolveEmbedModel(o.model, o.weights)
	if err != nil {
		return err
	}
	if err := em.checkPool(o.pool); err != nil {
		return fmt.Errorf("embed: --pool: %w", err)
	}
	// Read and check every input before the (slow) weights load.
	wantImages, wantTexts := len(o.images) > 0 || o.pixels != "", len(o.texts) > 0 || o.ids != ""
	var pixels []float32
	var nPix int
	if o.pixels != "" {
		if pixels, nPix, err = readPixels(o.pixels, em.imageSize()); err != nil {
			return err
		}
	}
	var text textInputs
	if wantTexts {
		if err := em.checkTexts(o.model); err != nil {
			return err
		}
		if text, err = readTexts(o, em.cfg); err != nil {
			return err
		}
	}
	if err := em.checkImages(wantImages); err != nil {
		return err // before the device opens: the file's contents are known already
	}

	be := o.backend
	if be == nil {
		if be, err = openBackend(o.device, cuda.F32, o.log); err != nil {
			return fmt.Errorf("embed: %w", err)
		}
	}
	var imgEmb, txtEmb []float32
	var imgNames, txtNames []string
	var imgDim int
	if wantImages {
		tw, err := em.loadImages(be, o.pool)
		if err != nil {
			return err
		}
		defer tw.Free()
		imgDim = tw.Dim()
		if len(o.images) > 0 {
			if imgEmb, err = embedImages(tw, o.images, o.batch); err != nil {
				return err
			}
			imgNames = o.images
		} else {
			S := tw.ImageSize()
			for b := 0; b < nPix; b += o.batch {
				n := min(o.batch, nPix-b)
				imgEmb = append(imgEmb, tw.Encode(pixels[b*3*S*S:(b+n)*3*S*S], n)...)
			}
			imgNames = indexNames("pixel_values", nPix)
		}
	}
	if wantTexts {
		tt, err := em.loadText(be)
		if err != nil {
			return err
		}
		defer tt.Free()
		txtEmb = tt.Encode(text.ids, text.n, text.T)
		txtNames = o.texts
		if len(txtNames) == 0 {
			txtNames = indexNames("input_ids", text.n)
		}
	}
	return writeEmbeddings(w, o, imgNames, txtNames, imgEmb, txtEmb, imgDim, em.cfg.EmbedDim)
}

// textInputs are embed's texts as token ids.
type textInputs struct {
	ids  []int32
	n, T int
}

// readTexts tokenizes --text or reads --ids for the text tower of cfg.
func readTexts(o embedOptions, cfg clip.Config) (textInputs, error) {
	var in textInputs
	var err error
	if o.ids != "" {
		in.ids, in.n, in.T, err = readIDs(o.ids, cfg.Text)
		return in, err
	}
	tok, err := tokenizer.Open(o.vocab)
	if err != nil {
		return in, fmt.Errorf("embed: --vocab: %w", err)
	}
	if cfg.Text.VocabSize != tokenizer.VocabSize {
		return in, fmt.Errorf("embed: --text: the model's vocabulary has %d ids, CLIP's BPE %d (use --ids for other vocabularies)", cfg.Text.VocabSize, tokenizer.VocabSize)
	}
	in.T = cfg.Text.ContextLength
	in.ids, in.n = tok.TokenizeBatch(o.texts, in.T), len(o.texts)
	return in, nil
}

// writeEmbeddings writes --out, or prints the cosine table (images and
// texts), or one embedding per line.
func writeEmbeddings(w io.Writer, o embedOptions, imgNames, txtNames []string, imgEmb, txtEmb []float32, imgDim, txtDim int) error {
	if o.out != "" {
		var ts []safetensors.Tensor
		if imgEmb != nil {
			ts = append(ts, safetensors.F32("image_embeds", []int{len(imgEmb) / imgDim, imgDim}, imgEmb))
		}
		if txtEmb != nil {
			ts = append(ts, safetensors.F32("text_embeds", []int{len(txtEmb) / txtDim, txtDim}, txtEmb))
		}
		meta := map[string]string{"model": o.model, "weights": o.weights}
		if o.pool != "" {
			meta["pool"] = o.pool
		}
		if err := safetensors.Write(o.out, ts, meta); err != nil {
			return fmt.Errorf("embed: --out: %w", err)
		}
		return nil
	}
	if imgEmb != nil && txtEmb != nil {
		printCosineTable(w, imgNames, txtNames, imgEmb, txtEmb, imgDim)
		return nil
	}
	for i, name := range imgNames {
		printEmbedding(w, name, imgEmb[i*imgDim:(i+1)*imgDim])
	}
	for i, name := range txtNames {
		printEmbedding(w, name, txtEmb[i*txtDim:(i+1)*txtDim])
	}
	return nil
}

// embedImages decodes and preprocesses the files with the tower's eval
// transform and runs the tower in batches.
func embedImages(tw imageEncoder, files []string, batch int) ([]float32, error) {
	S := tw.ImageSize()
	pre := tw.Preprocessor()
	bar := progress.New("embed", int64(len(files)), progress.Options{Unit: "img", Quiet: len(files) < 2*batch})
	defer bar.Finish()
	var out []float32
	px := make([]float32, 0, batch*3*S*S)
	flush := func() {
		if n := len(px) / (3 * S * S); n > 0 {
			out = append(out, tw.Encode(px, n)...)
			bar.Add(int64(n))
			px = px[:0]
		}
	}
	for _, f := range files {
		img, err := imageproc.DecodeFile(f)
		if err != nil {
			return nil, fmt.Errorf("embed: --image: %w", err)
		}
		px = append(px, pre.Transform(img, nil)...)
		if len(px) == cap(px) {
			flush()
		}
	}
	flush()
	return out, nil
}

// readPixels reads pixel_values (B,3,S,S) from a safetensors file.
func readPixels(path string, S int) ([]float32, int, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("embed: --pixels: %w", err)
	}
	defer f.Close()
	d, shape, err := f.Float32("pixel_values")
	if err != nil {
		return nil, 0, fmt.Errorf("embed: --pixels %s: %w", path, err)
	}
	if len(shape) != 4 || shape[1] != 3 || shape[2] != S || shape[3] != S || shape[0] == 0 {
		return nil, 0, fmt.Errorf("embed: --pixels %s: pixel_values has shape %v, the model wants (B,3,%d,%d)", path, shape, S, S)
	}
	return d, shape[0], nil
}

// readIDs reads input_ids (B,T) from a safetensors file and checks them against the text tower.
func readIDs(path string, tc clip.TextConfig) ([]int32, int, int, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("embed: --ids: %w", err)
	}
	defer f.Close()
	ids, shape, err := f.Int32s("input_ids")
	if err != nil {
		return nil, 0, 0, fmt.Errorf("embed: --ids %s: %w", path, err)
	}
	if len(shape) != 2 || shape[0] == 0 || shape[1] == 0 || shape[1] > tc.ContextLength {
		return nil, 0, 0, fmt.Errorf("embed: --ids %s: input_ids has shape %v, the model wants (B,T) with T ≤ %d", path, shape, tc.ContextLength)
	}
	for i, id := range ids {
		if id < 0 || int(id) >= tc.VocabSize {
			return nil, 0, 0, fmt.Errorf("embed: --ids %s: id %d at row %d, position %d is outside the vocabulary of %d", path, id, i/shape[1], i%shape[1], tc.VocabSize)
		}
	}
	return ids, shape[0], shape[1], nil
}

func indexNames(tensor string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s[%d]", tensor, i)
	}
	return out
}

func printEmbedding(w io.Writer, name string, v []float32) {
	var b strings.Builder
	b.WriteString(name)
	for _, x := range v {
		fmt.Fprintf(&b, " %.6g", x)
	}
	fmt.Fprintln(w, b.String())
}

// printCosineTable prints cos(image i, text j): one row per image, one column per text.
func printCosineTable(w io.Writer, imgNames, txtNames []string, img, txt []float32, E int) {
	norm := func(v []float32) []float64 {
		var ss float64
		for _, x := range v {
			ss += float64(x) * float64(x)
		}
		n := math.Max(math.Sqrt(ss), 1e-12)
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x) / n
		}
		return out
	}
	fmt.Fprintln(w, "cosine similarity (rows: images, columns: texts)")
	for j, name := range txtNames {
		fmt.Fprintf(w, "  t%d = %s\n", j, name)
	}
	fmt.Fprintf(w, "%-32s", "")
	for j := range txtNames {
		fmt.Fprintf(w, " %8s", fmt.Sprintf("t%d", j))
	}
	fmt.Fprintln(w)
	for i, name := range imgNames {
		a := norm(img[i*E : (i+1)*E])
		if r := []rune(name); len(r) > 32 {
			name = "…" + string(r[len(r)-31:])
		}
		fmt.Fprintf(w, "%-32s", name)
		for j := range txtNames {
			b := norm(txt[j*E : (j+1)*E])
			var dot float64
			for k := range a {
				dot += a[k] * b[k]
			}
			fmt.Fprintf(w, " %8.4f", dot)
		}
		fmt.Fprintln(w)
	}
}
