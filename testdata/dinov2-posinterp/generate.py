# Reference position tables for internal/dinov2's ResizePositions: PyTorch's
# own F.interpolate (bicubic, float32, CPU) applied as DinoVisionTransformer.
# interpolate_pos_encoding does at facebookresearch/dinov2 9c7e324:
#   sx = (g + interpolate_offset) / sqrt(N); F.interpolate(table (1,C,M,M),
#   scale_factor=(sx, sx), mode="bicubic", antialias=...)
# usage (Debian's python3-torch 1.13, CPU): python3 generate.py OUTDIR
# needs ../../../shared/fixtures/generators/st.py (a small safetensors writer) on PYTHONPATH.
import json, math, sys
import numpy as np, torch, torch.nn.functional as F
import st
out = sys.argv[1]
rng = np.random.default_rng(31)
# (M trained grid, g run grid, interpolate_offset, antialias)
cases = [(37, 16, 0.1, False), (37, 16, 0.0, True), (37, 16, 0.1, True), (37, 32, 0.1, False),
         (37, 46, 0.0, True), (16, 37, 0.1, False), (16, 37, 0.0, True), (4, 3, 0.1, False), (4, 3, 0.0, True), (5, 7, 0.1, False),
         # without an offset some source indices land on whole numbers, where torch floors a float32 rounding of a double
         (37, 23, 0.0, False), (37, 7, 0.0, False), (37, 35, 0.0, False)]
C = 4
tensors, meta = {}, []
for i, (M, g, off, aa) in enumerate(cases):
    pos = rng.standard_normal((1 + M * M, C)).astype(np.float32)
    t = torch.from_numpy(pos)
    sx = float(g + off) / math.sqrt(M * M)
    p = F.interpolate(t[1:].reshape(1, M, M, C).permute(0, 3, 1, 2), scale_factor=(sx, sx), mode="bicubic", antialias=aa)
    assert p.shape[-1] == g, (M, g, off, p.shape)
    p = p.permute(0, 2, 3, 1).reshape(-1, C)
    res = torch.cat((t[:1], p), 0).numpy()
    tensors[f"case{i}.pos"] = pos
    tensors[f"case{i}.out"] = res
    meta.append(dict(case=i, M=M, g=g, interpolate_offset=off, antialias=aa, C=C))
st.save(f"{out}/posinterp.safetensors", tensors)
json.dump(dict(torch=torch.__version__, cases=meta), open(f"{out}/cases.json", "w"), indent=1)
print(len(cases), "cases")
