package imageproc

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Preprocessor turns an RGB image into a CLIP input tensor. The eval
// transform is OpenCLIP's: Resize(Size, bicubic) on the PIL image (shortest
// side to Size, Pillow's antialiased bicubic), CenterCrop(Size), ToTensor,
// Normalize(Mean, Std). The augmented transform replaces resize and crop by
// RandomResizedCrop(Size, scale 0.9–1.0, ratio 3/4–4/3) as OpenCLIP trains.
//
// Letters in shape comments: S = Size, C = 3 channels.
type Preprocessor struct {
	// Size is the square output side in pixels (224 for most CLIP models).
	Size int
	// Resize is the shortest side the eval transform resizes to before the
	// centre crop of Size; 0 means Size (OpenCLIP's Resize(Size) then
	// CenterCrop(Size)). torchvision's ImageNet recipe, which DINOv2 and
	// Swin evaluate with, resizes to 256 (Swin-T: 232) and crops 224.
	Resize int
	// Mean and Std normalise each channel of values in [0,1].
	Mean, Std [3]float32
	// ApplyEXIF turns the image upright by its EXIF orientation first. Off
	// by default: PIL and OpenCLIP do not.
	ApplyEXIF bool

	cache *coeffCache
}

// CLIPPreprocessor is OpenCLIP's eval transform for size×size inputs with
// OpenAI CLIP's mean (0.48145466, 0.4578275, 0.40821073) and std
// (0.26862954, 0.26130258, 0.27577711).
func CLIPPreprocessor(size int) Preprocessor {
	return Preprocessor{
		Size:  size,
		Mean:  [3]float32{0.48145466, 0.4578275, 0.40821073},
		Std:   [3]float32{0.26862954, 0.26130258, 0.27577711},
		cache: newCoeffCache(),
	}
}

// ImageNetPreprocessor is torchvision's ImageNet eval transform:
// Resize(resize, bicubic), CenterCrop(crop), ImageNet mean (0.485, 0.456,
// 0.406) and std (0.229, 0.224, 0.225) — DINOv2's
// make_classification_eval_transform (256, 224) and the Swin weights'
// ImageClassification transforms.
func ImageNetPreprocessor(resize, crop int) Preprocessor {
	return Preprocessor{
		Size:   crop,
		Resize: resize,
		Mean:   [3]float32{0.485, 0.456, 0.406},
		Std:    [3]float32{0.229, 0.224, 0.225},
		cache:  newCoeffCache(),
	}
}

// resizeSize is the shortest side of the eval transform's resize.
func (p Preprocessor) resizeSize() int {
	if p.Resize > 0 {
		return p.Resize
	}
	return p.Size
}

// Describe is a canonical one-line description of everything that decides
// the pixels p produces; the embedding cache puts it into its fingerprint.
func Describe(p Preprocessor) string {
	f := func(v [3]float32) string {
		s := make([]string, 3)
		for i, x := range v {
			s[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
		}
		return strings.Join(s, ",")
	}
	return fmt.Sprintf("imageproc/v1 decode=libjpeg-islow-fancy,rgb resize=shortest:%d:pil-bicubic-aa-fixed22 crop=center:%d mean=%s std=%s exif=%t",
		p.resizeSize(), p.Size, f(p.Mean), f(p.Std), p.ApplyEXIF)
}

// ResizedSize is torchvision's output size for Resize(size) with an int:
// the shortest side becomes size, the other int(size·long/short).
func ResizedSize(w, h, size int) (int, int) {
	if w <= h {
		return size, int(float64(size*h) / float64(w))
	}
	return int(float64(size*w) / float64(h)), size
}

// centerOffset is torchvision's crop offset int(round((in - out) / 2.0)),
// Python's round being round-half-to-even.
func centerOffset(in, out int) int {
	return int(math.RoundToEven(float64(in-out) / 2))
}

func (p Preprocessor) oriented(img *RGB) *RGB {
	if p.ApplyEXIF {
		return img.Oriented()
	}
	return img
}

// Resized returns the uint8 S×S image of the eval transform before
// normalisation (what the parity fixture holds): the shortest side resized
// to Resize (Size when 0), then the centre S×S.
func (p Preprocessor) Resized(img *RGB) *RGB {
	return p.resized(img, nil)
}

func (p Preprocessor) resized(img *RGB, sc *scratch) *RGB {
	img = p.oriented(img)
	s := p.Size
	rw, rh := ResizedSize(img.W, img.H, p.resizeSize())
	ox, oy := centerOffset(rw, s), centerOffset(rh, s)
	return resizeWindow(img, img.Bounds(), rw, rh, image.Rect(ox, oy, ox+s, oy+s), p.cache, sc)
}

// Transform is the eval transform: img → dst (C,S,S) float32, normalised.
// dst is reused when it has room for 3·S·S values.
func (p Preprocessor) Transform(img *RGB, dst []float32) []float32 {
	sc := p.cache.getScratch()
	dst = p.Normalize(p.resized(img, sc), dst)
	p.cache.putScratch(sc)
	return dst
}

// CropParams is torchvision's RandomResizedCrop.get_params with scale
// 0.9–1.0 and ratio 3/4–4/3: ten tries at a random area and aspect ratio,
// then the central crop clamped to the ratio range. It returns the crop in
// image coordinates.
func CropParams(w, h int, rng *rand.Rand) image.Rectangle {
	const scale0, scale1 = 0.9, 1.0
	const ratio0, ratio1 = 3.0 / 4.0, 4.0 / 3.0
	area := float64(w * h)
	logR0, logR1 := math.Log(ratio0), math.Log(ratio1)
	for range 10 {
		target := area * (scale0 + (scale1-scale0)*rng.Float64())
		aspect := math.Exp(logR0 + (logR1-logR0)*rng.Float64())
		cw := int(math.RoundToEven(math.Sqrt(target * aspect)))
		ch := int(math.RoundToEven(math.Sqrt(target / aspect)))
		if 0 < cw && cw <= w && 0 < ch && ch <= h {
			i := rng.IntN(h - ch + 1)
			j := rng.IntN(w - cw + 1)
			return image.Rect(j, i, j+cw, i+ch)
		}
	}
	inRatio := float64(w) / float64(h)
	cw, ch := w, h
	switch {
	case inRatio < ratio0:
		ch = int(math.RoundToEven(float64(cw) / ratio0))
	case inRatio > ratio1:
		cw = int(math.RoundToEven(float64(ch) * ratio1))
	}
	i, j := (h-ch)/2, (w-cw)/2
	return image.Rect(j, i, j+cw, i+ch)
}

// RandomResized returns the uint8 S×S result of RandomResizedCrop: a crop
// chosen by CropParams, resized to S×S with Pillow's bicubic.
func (p Preprocessor) RandomResized(img *RGB, rng *rand.Rand) *RGB {
	return p.randomResized(img, rng, nil)
}

func (p Preprocessor) randomResized(img *RGB, rng *rand.Rand, sc *scratch) *RGB {
	img = p.oriented(img)
	r := CropParams(img.W, img.H, rng)
	s := p.Size
	return resizeWindow(img, r, s, s, image.Rect(0, 0, s, s), p.cache, sc)
}

// TransformRandom is the augmented transform (one training view): img → dst
// (C,S,S) float32, normalised.
func (p Preprocessor) TransformRandom(img *RGB, rng *rand.Rand, dst []float32) []float32 {
	sc := p.cache.getScratch()
	dst = p.Normalize(p.randomResized(img, rng, sc), dst)
	p.cache.putScratch(sc)
	return dst
}

// Normalize is ToTensor + Normalize: HWC uint8 → CHW float32 (v/255 − mean)/std
// in float32, the operations torchvision does, in its order.
func (p Preprocessor) Normalize(img *RGB, dst []float32) []float32 {
	n := img.W * img.H
	if cap(dst) < 3*n {
		dst = make([]float32, 3*n)
	}
	dst = dst[:3*n]
	var lut [3][256]float32
	for c := range 3 {
		for v := range 256 {
			lut[c][v] = (float32(v)/255 - p.Mean[c]) / p.Std[c]
		}
	}
	r, g, b := dst[:n], dst[n:2*n], dst[2*n:]
	pix := img.Pix[:3*n]
	for i := range n {
		q := pix[3*i : 3*i+3]
		r[i], g[i], b[i] = lut[0][q[0]], lut[1][q[1]], lut[2][q[2]]
	}
	return dst
}
