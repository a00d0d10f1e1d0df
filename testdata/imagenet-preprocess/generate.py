# torchvision's ImageNet eval transform (Resize(r, bicubic) on the PIL image,
# then CenterCrop(c)) on synthetic PNGs, the uint8 crops before ToTensor:
# DINOv2's make_classification_eval_transform (256, 224) and Swin-T's
# weights' ImageClassification (232, 224).
# usage (Debian's python3-torchvision 0.14, Pillow 9.4): python3 generate.py OUTDIR
# needs ../../../shared/fixtures/generators/st.py on PYTHONPATH.
import json, sys
import numpy as np
from PIL import Image
from torchvision import transforms
import st
out = sys.argv[1]
rng = np.random.default_rng(5)
def synth(w, h):
    # smooth colour ramps plus texture, so resampling differences show and the PNG stays small
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1))
    g = (y * 255 // max(h - 1, 1))
    b = ((x // 7 + y // 5) % 2) * 200 + 20
    img = np.stack([r, g, b], -1).astype(np.int32) + rng.integers(-4, 5, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)
cases, tensors = [], {}
# (width, height, resize): a downscale either way round and an upscale
for name, (w, h, resize) in {"wide": (401, 300, 256), "tall": (180, 260, 232), "small": (150, 120, 256)}.items():
    arr = synth(w, h)
    Image.fromarray(arr).save(f"{out}/{name}.png")
    for crop in [224]:
        t = transforms.Compose([transforms.Resize(resize, interpolation=transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(crop)])
        res = np.asarray(t(Image.open(f"{out}/{name}.png").convert("RGB")))
        key = f"{name}.{resize}.{crop}"
        tensors[key] = res
        cases.append(dict(image=f"{name}.png", resize=resize, crop=crop, key=key, size=[w, h]))
st.save(f"{out}/imagenet_preprocess.safetensors", tensors)
json.dump(cases, open(f"{out}/cases.json", "w"), indent=1)
print(len(cases), "cases")
