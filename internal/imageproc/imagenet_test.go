package imageproc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/testutil"
)

// testdata/imagenet-preprocess: torchvision 0.14's Resize(r, bicubic) +
// CenterCrop(224) on Pillow 9.4 images (generate.py there; FIXTURES.md), the
// ImageNet eval transform DINOv2 (r = 256) and Swin-T (r = 232) use, on
// synthetic PNGs downscaled either way round and upscaled. The resampler is
// Pillow's own arithmetic and the crop offset torchvision's rounding, so the
// uint8 crops must be equal; a crop taken from the Size-resized image (the
// CLIP transform) or an offset rounded the other way breaks every case.
func TestImageNetPreprocessMatchesTorchvision(t *testing.T) {
	dir := testutil.Testdata(t, "imagenet-preprocess")
	raw, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Image, Key   string
		Resize, Crop int
	}
	if err := json.Unmarshal(raw, &cases); err != nil || len(cases) == 0 {
		t.Fatalf("cases.json: %v (%d cases)", err, len(cases))
	}
	f, err := safetensors.Open(filepath.Join(dir, "imagenet_preprocess.safetensors"))
	if err != nil {
		t.Fatalf("reference file: %v", err)
	}
	defer f.Close()
	for _, c := range cases {
		t.Run(c.Key, func(t *testing.T) {
			img, err := DefaultDecoder().DecodeFile(filepath.Join(dir, c.Image))
			if err != nil {
				t.Fatal(err)
			}
			want, info, err := f.Bytes(c.Key)
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Shape) != 3 || info.Shape[0] != c.Crop || info.Shape[1] != c.Crop {
				t.Fatalf("reference shape %v", info.Shape)
			}
			p := ImageNetPreprocessor(c.Resize, c.Crop)
			got := p.Resized(img)
			if got.W != c.Crop || got.H != c.Crop {
				t.Fatalf("%d×%d, want %d×%d", got.W, got.H, c.Crop, c.Crop)
			}
			diff, worst := 0, 0
			for i, v := range got.Pix[:len(want)] {
				if d := int(v) - int(want[i]); d != 0 {
					diff++
					worst = max(worst, d, -d)
				}
			}
			if diff > 0 {
				t.Errorf("%d of %d values differ from torchvision's (worst by %d levels)", diff, len(want), worst)
			}
		})
	}
}

// TestDescribeResize: a resize other than the crop shows in the description
// (and so in the cache fingerprint); CLIP's transform reads as it always did
// (internal/tower's golden CLIP fingerprints hash this very line).
func TestDescribeResize(t *testing.T) {
	clip := Describe(CLIPPreprocessor(224))
	want := "imageproc/v1 decode=libjpeg-islow-fancy,rgb resize=shortest:224:pil-bicubic-aa-fixed22 crop=center:224 mean=0.48145467,0.4578275,0.40821072 std=0.26862955,0.2613026,0.2757771 exif=false"
	if clip != want {
		t.Errorf("CLIP description changed:\n%s\nwant\n%s", clip, want)
	}
	in := Describe(ImageNetPreprocessor(256, 224))
	if in == clip || !strings.Contains(in, "resize=shortest:256:") || !strings.Contains(in, "crop=center:224") || !strings.Contains(in, "mean=0.485,0.456,0.406") {
		t.Errorf("ImageNet description %q", in)
	}
}
