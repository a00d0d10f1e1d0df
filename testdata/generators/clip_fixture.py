#!/usr/bin/python3
# A clip-tiny-shaped fixture directory of other shapes, so that the tests which
# read $LITCACHE_FIXTURE_DIR can be run against it (issue 17.5: they must take
# every shape and vocabulary size from the fixture's own files).
#
# HF transformers is not installed here, so the float64 reference is written in
# plain PyTorch (Debian's python3-torch 1.13, CPU) following testdata/FIXTURES.md's
# definitions of clip-tiny: HF CLIP's forward (pre_layrnorm, pre-LN blocks,
# quick_gelu, q scaled by head_dim^-0.5, causal text attention, pooling at the
# first end-of-text id = vocab_size-1, post_layernorm on the class token,
# bias-free projections) and a LiT run of the text tower (symmetric InfoNCE,
# torch.optim.AdamW with weight decay on ndim>=2 tensors only, OpenCLIP's warm-up
# + cosine lr, logit_scale trained and clamped to [0, ln 100]).
#
# Because it is not a peer implementation, check it against the real fixture
# first: `check` replays testdata/clip-tiny's forward and 12 training steps from
# its own weights and inputs and prints the worst relative differences (they
# must sit at float64 rounding, ~1e-12 or below).
#
# usage:
#   /usr/bin/python3 testdata/generators/clip_fixture.py check testdata/clip-tiny
#   /usr/bin/python3 testdata/generators/clip_fixture.py make OUTDIR [SEED]
#   LITCACHE_FIXTURE_DIR=OUTDIR go test ./internal/safetensors/ ./internal/clip/ ./internal/optim/ ./stages/tune/ ./cli/
# Nothing in the repository needs this script or Python; it makes test data.
import json, math, os, struct, sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)

# ---- safetensors (u64 LE header length, JSON header, raw little-endian bytes) ----
_DT = {'F32': np.float32, 'F64': np.float64, 'I32': np.int32}


def st_load(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    hdr.pop('__metadata__', None)
    return {k: np.frombuffer(data[v['data_offsets'][0]:v['data_offsets'][1]], dtype=_DT[v['dtype']]).reshape(v['shape']).copy()
            for k, v in hdr.items()}


def st_save(path, tensors):
    inv = {np.dtype(v): k for k, v in _DT.items()}
    hdr, blobs, off = {}, [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        b = a.tobytes()
        hdr[k] = {'dtype': inv[a.dtype], 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---- the model, HF CLIP's computation on a dict of HF-named float64 tensors ----
def ln(x, w, b):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], w, b, eps=1e-5)


def block(x, p, pre, heads, causal):
    B, N, C = x.shape
    D = C // heads
    lin = lambda y, n: y @ p[f'{pre}.{n}.weight'].T + p[f'{pre}.{n}.bias']
    h = ln(x, p[f'{pre}.layer_norm1.weight'], p[f'{pre}.layer_norm1.bias'])
    q = (lin(h, 'self_attn.q_proj') * D ** -0.5).view(B, N, heads, D).transpose(1, 2)
    k = lin(h, 'self_attn.k_proj').view(B, N, heads, D).transpose(1, 2)
    v = lin(h, 'self_attn.v_proj').view(B, N, heads, D).transpose(1, 2)
    s = q @ k.transpose(-1, -2)
    if causal:
        s = s + torch.full((N, N), float('-inf')).triu(1)
    a = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, N, C)
    x = x + lin(a, 'self_attn.out_proj')
    h = ln(x, p[f'{pre}.layer_norm2.weight'], p[f'{pre}.layer_norm2.bias'])
    h = lin(h, 'mlp.fc1')
    h = h * torch.sigmoid(1.702 * h)  # quick_gelu
    return x + lin(h, 'mlp.fc2')


def vision(p, cfg, px):
    v = cfg['vision_cfg']
    heads = v['width'] // v['head_width']
    x = torch.nn.functional.conv2d(px, p['vision_model.embeddings.patch_embedding.weight'], stride=v['patch_size'])
    x = x.flatten(2).transpose(1, 2)
    cls = p['vision_model.embeddings.class_embedding'].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], 1) + p['vision_model.embeddings.position_embedding.weight']
    x = ln(x, p['vision_model.pre_layrnorm.weight'], p['vision_model.pre_layrnorm.bias'])
    hidden = [x]
    for i in range(v['layers']):
        x = block(x, p, f'vision_model.encoder.layers.{i}', heads, False)
        hidden.append(x)
    pooled = x[:, 0]
    emb = ln(pooled, p['vision_model.post_layernorm.weight'], p['vision_model.post_layernorm.bias']) @ p['visual_projection.weight'].T
    return emb, hidden, pooled


def text(p, cfg, ids):
    t = cfg['text_cfg']
    T = ids.shape[1]
    x = p['text_model.embeddings.token_embedding.weight'][ids] + p['text_model.embeddings.position_embedding.weight'][:T]
    hidden = [x]
    for i in range(t['layers']):
        x = block(x, p, f'text_model.encoder.layers.{i}', t['heads'], True)
        hidden.append(x)
    last = ln(x, p['text_model.final_layer_norm.weight'], p['text_model.final_layer_norm.bias'])
    eot = (ids == t['vocab_size'] - 1).int().argmax(1)  # first end-of-text
    emb = last[torch.arange(ids.shape[0]), eot] @ p['text_projection.weight'].T
    return emb, hidden, last


def hf_shapes(cfg):
    v, t, E = cfg['vision_cfg'], cfg['text_cfg'], cfg['embed_dim']
    Wv, Wt, G = v['width'], t['width'], v['image_size'] // v['patch_size']
    s = {'logit_scale': (), 'visual_projection.weight': (E, Wv), 'text_projection.weight': (E, Wt),
         'vision_model.embeddings.patch_embedding.weight': (Wv, 3, v['patch_size'], v['patch_size']),
         'vision_model.embeddings.class_embedding': (Wv,),
         'vision_model.embeddings.position_embedding.weight': (G * G + 1, Wv),
         'text_model.embeddings.token_embedding.weight': (t['vocab_size'], Wt),
         'text_model.embeddings.position_embedding.weight': (t['context_length'], Wt)}
    for n in ('vision_model.pre_layrnorm', 'vision_model.post_layernorm'):
        s[n + '.weight'] = s[n + '.bias'] = (Wv,)
    s['text_model.final_layer_norm.weight'] = s['text_model.final_layer_norm.bias'] = (Wt,)
    for tower, W, L, R in (('vision_model', Wv, v['layers'], v['mlp_ratio']), ('text_model', Wt, t['layers'], t['mlp_ratio'])):
        H = int(W * R)
        for i in range(L):
            pre = f'{tower}.encoder.layers.{i}'
            for n in ('layer_norm1', 'layer_norm2'):
                s[f'{pre}.{n}.weight'] = s[f'{pre}.{n}.bias'] = (W,)
            for n in ('q_proj', 'k_proj', 'v_proj', 'out_proj'):
                s[f'{pre}.self_attn.{n}.weight'], s[f'{pre}.self_attn.{n}.bias'] = (W, W), (W,)
            s[f'{pre}.mlp.fc1.weight'], s[f'{pre}.mlp.fc1.bias'] = (H, W), (H,)
            s[f'{pre}.mlp.fc2.weight'], s[f'{pre}.mlp.fc2.bias'] = (W, H), (W,)
    return s


def random_weights(cfg, g):
    # Every parameter random, biases and LayerNorm gains too (a weight/bias
    # mix-up must show), float32 values.
    p = {}
    for n, shape in sorted(hf_shapes(cfg).items()):
        if n == 'logit_scale':
            p[n] = torch.tensor(math.log(1 / 0.07))
        elif len(shape) >= 2:
            fan = int(np.prod(shape[1:]))
            p[n] = torch.randn(shape, generator=g) / math.sqrt(fan)
        else:
            p[n] = torch.randn(shape, generator=g) * 0.1 + (1.0 if ('norm' in n and n.endswith('weight')) else 0.0)
        if 'embedding' in n and len(shape) >= 2 and 'patch' not in n:
            p[n] = torch.randn(shape, generator=g) * 0.5
    return {k: v.float().double() for k, v in p.items()}


def openclip_names(p, cfg):
    o = {'logit_scale': p['logit_scale'], 'visual.proj': p['visual_projection.weight'].T, 'text_projection': p['text_projection.weight'].T,
         'visual.conv1.weight': p['vision_model.embeddings.patch_embedding.weight'],
         'visual.class_embedding': p['vision_model.embeddings.class_embedding'],
         'visual.positional_embedding': p['vision_model.embeddings.position_embedding.weight'],
         'token_embedding.weight': p['text_model.embeddings.token_embedding.weight'],
         'positional_embedding': p['text_model.embeddings.position_embedding.weight']}
    for a, b in (('visual.ln_pre', 'vision_model.pre_layrnorm'), ('visual.ln_post', 'vision_model.post_layernorm'), ('ln_final', 'text_model.final_layer_norm')):
        o[a + '.weight'], o[a + '.bias'] = p[b + '.weight'], p[b + '.bias']
    for oc, hf, L in (('visual.transformer', 'vision_model', cfg['vision_cfg']['layers']), ('transformer', 'text_model', cfg['text_cfg']['layers'])):
        for i in range(L):
            a, b = f'{oc}.resblocks.{i}', f'{hf}.encoder.layers.{i}'
            for x, y in (('ln_1', 'layer_norm1'), ('ln_2', 'layer_norm2'), ('attn.out_proj', 'self_attn.out_proj'), ('mlp.c_fc', 'mlp.fc1'), ('mlp.c_proj', 'mlp.fc2')):
                o[f'{a}.{x}.weight'], o[f'{a}.{x}.bias'] = p[f'{b}.{y}.weight'], p[f'{b}.{y}.bias']
            o[f'{a}.attn.in_proj_weight'] = torch.cat([p[f'{b}.self_attn.{n}_proj.weight'] for n in 'qkv'])
            o[f'{a}.attn.in_proj_bias'] = torch.cat([p[f'{b}.self_attn.{n}_proj.bias'] for n in 'qkv'])
    return o


def token_rows(lengths, T, V, g):
    # Rows of CLIP's shape: start-of-text V-2, ids in [1, V-3], end-of-text V-1, zero padded.
    ids = torch.zeros(len(lengths), T, dtype=torch.long)
    for r, n in enumerate(lengths):
        ids[r, 0] = V - 2
        ids[r, 1:n - 1] = torch.randint(1, V - 2, (n - 2,), generator=g)
        ids[r, n - 1] = V - 1
    return ids


def lr_at(s, base, warmup, steps):
    if s < warmup:
        return base * (s + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (s - warmup) / (steps - warmup))) * base


def train(p, cfg, tr, feats, ids):
    # The LiT run of the text tower: returns per-step loss/lr/logit_scale, step 0's grads, final weights.
    names = sorted(n for n in p if n.startswith('text_') or n == 'logit_scale')
    params = {n: p[n].clone().requires_grad_(True) for n in names}
    # logit_scale starts at the float64 ln(1/0.07), not the weights file's float32 copy.
    params['logit_scale'] = torch.tensor(tr['logit_scale_init']).requires_grad_(True)
    excluded = sorted(n for n in names if params[n].dim() < 2 or n == 'logit_scale')
    groups = [{'params': [params[n] for n in names if n not in excluded], 'weight_decay': tr['weight_decay']},
              {'params': [params[n] for n in excluded], 'weight_decay': 0.0}]
    opt = torch.optim.AdamW(groups, lr=tr['base_lr'], betas=tuple(tr['betas']), eps=tr['eps'])
    out = {'loss': [], 'lr': [], 'logit_scale': []}
    grads0 = None
    for s in range(tr['steps']):
        lr = lr_at(s, tr['base_lr'], tr['warmup'], tr['steps'])
        for gr in opt.param_groups:
            gr['lr'] = lr
        opt.zero_grad()
        q = dict(p, **params)
        t, _, _ = text(q, cfg, ids[s])
        t = t / t.norm(dim=-1, keepdim=True)
        logits = params['logit_scale'].exp() * feats[s] @ t.T
        lab = torch.arange(logits.shape[0])
        loss = (torch.nn.functional.cross_entropy(logits, lab) + torch.nn.functional.cross_entropy(logits.T, lab)) / 2
        loss.backward()
        if s == 0:
            grads0 = {n: params[n].grad.detach().clone() for n in names}
        opt.step()
        with torch.no_grad():
            params['logit_scale'].clamp_(0, math.log(100))
        out['loss'].append(loss.item())
        out['lr'].append(lr)
        out['logit_scale'].append(params['logit_scale'].item())
    final = {n: v.detach() for n, v in params.items()}
    return out, grads0, final, excluded


def np64(d):
    return {k: v.detach().numpy().astype(np.float64) for k, v in d.items()}


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def check(d):
    cfg = json.load(open(f'{d}/open_clip_config.json'))
    p = {k: torch.from_numpy(v.astype(np.float64)) for k, v in st_load(f'{d}/weights_hf.safetensors').items()}
    fwd = st_load(f'{d}/forward.safetensors')
    img, vh, vp = vision(p, cfg, torch.from_numpy(fwd['pixel_values']))
    txt, th, tl = text(p, cfg, torch.from_numpy(fwd['input_ids'].astype(np.int64)))
    got = {'image_embeds': img, 'text_embeds': txt, 'vision_pooled': vp, 'text_last_hidden': tl}
    got.update({f'vision_hidden.{i}': h for i, h in enumerate(vh)})
    got.update({f'text_hidden.{i}': h for i, h in enumerate(th)})
    worst = max((rel(v.detach().numpy(), fwd[k]), k) for k, v in got.items())
    print(f'forward: worst {worst[0]:.2g} ({worst[1]}) over {len(got)} tensors')
    ref = json.load(open(f'{d}/train_reference.json'))
    tin = st_load(f'{d}/train_inputs.safetensors')
    out, g0, final, excl = train(p, cfg, ref, torch.from_numpy(tin['image_features']), torch.from_numpy(tin['input_ids'].astype(np.int64)))
    for k in ('loss', 'lr', 'logit_scale'):
        print(f'{k}: worst {max(abs(a - b) / abs(b) for a, b in zip(out[k], ref[k])):.2g} over {len(out[k])} steps')
    print('decay_excluded equal:', excl == sorted(ref['decay_excluded']))
    for f, mine in (('train_grads_step0', g0), ('train_final_weights', final)):
        theirs = st_load(f'{d}/{f}.safetensors')
        # k_proj.bias's gradient is 0 in exact arithmetic (softmax ignores a
        # per-row constant): judge it absolutely there.
        zero = (lambda k: f == 'train_grads_step0' and 'k_proj.bias' in k)
        w = max((rel(mine[k].numpy(), theirs[k]), k) for k in theirs if not zero(k))
        z = max([float(np.abs(mine[k].numpy() - theirs[k]).max()) for k in theirs if zero(k)] or [0])
        print(f'{f}: worst {w[0]:.2g} ({w[1]}) over {len(theirs)} tensors (k_proj.bias grads: {z:.1g} absolute); same names: {sorted(mine) == sorted(theirs)}')


def make(d, seed):
    os.makedirs(d, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    # Every size differs from clip-tiny's (vision 3×32×32 patch 8 width 64 2 layers
    # 4 heads, text ctx 16 vocab 512 width 64 2 layers 4 heads, embed 32, 4+4
    # forward rows, train batch 8 × 12 steps).
    cfg = {'embed_dim': 24,
           'vision_cfg': {'image_size': 30, 'patch_size': 6, 'width': 48, 'layers': 3, 'head_width': 16, 'mlp_ratio': 2},
           'text_cfg': {'context_length': 12, 'vocab_size': 300, 'width': 40, 'heads': 5, 'layers': 3, 'mlp_ratio': 3},
           'quick_gelu': True}
    tr = {'batch': 6, 'steps': 10, 'warmup': 3, 'base_lr': 1e-3, 'weight_decay': 0.2, 'betas': [0.9, 0.98], 'eps': 1e-6,
          'logit_scale_init': math.log(1 / 0.07)}
    V, T, E, S = cfg['text_cfg']['vocab_size'], cfg['text_cfg']['context_length'], cfg['embed_dim'], cfg['vision_cfg']['image_size']
    p = random_weights(cfg, g)
    st_save(f'{d}/weights_hf.safetensors', {k: v.numpy().astype(np.float32) for k, v in p.items()})
    st_save(f'{d}/weights_openclip.safetensors', {k: v.numpy().astype(np.float32) for k, v in openclip_names(p, cfg).items()})
    json.dump(cfg, open(f'{d}/open_clip_config.json', 'w'), indent=1)

    px = torch.randn(5, 3, S, S, generator=g)  # already normalised
    ids = token_rows([T, 7, 3, 10, 5, 2], T, V, g)  # 6 text rows, one without padding
    with torch.no_grad():
        img, vh, vp = vision(p, cfg, px)
        txt, th, tl = text(p, cfg, ids)
    fwd = {'pixel_values': px, 'image_embeds': img, 'text_embeds': txt, 'vision_pooled': vp, 'text_last_hidden': tl}
    fwd.update({f'vision_hidden.{i}': h for i, h in enumerate(vh)})
    fwd.update({f'text_hidden.{i}': h for i, h in enumerate(th)})
    fwd = np64(fwd)
    fwd['input_ids'] = ids.numpy().astype(np.int32)
    st_save(f'{d}/forward.safetensors', fwd)

    B, steps = tr['batch'], tr['steps']
    feats = torch.randn(steps, B, E, generator=g)
    feats = feats / feats.norm(dim=-1, keepdim=True)
    tids = torch.stack([token_rows([int(x) for x in torch.randint(3, T, (B,), generator=g)], T, V, g) for _ in range(steps)])
    st_save(f'{d}/train_inputs.safetensors', {'image_features': feats.numpy(), 'input_ids': tids.numpy().astype(np.int32)})
    out, g0, final, excl = train(p, cfg, tr, feats, tids)
    st_save(f'{d}/train_grads_step0.safetensors', np64(g0))
    st_save(f'{d}/train_final_weights.safetensors', np64(final))
    json.dump(dict(out, **tr, decay_excluded=excl), open(f'{d}/train_reference.json', 'w'), indent=1)
    json.dump({'seed': seed, 'generator': 'testdata/generators/clip_fixture.py', 'torch': torch.__version__,
               'command': f'/usr/bin/python3 testdata/generators/clip_fixture.py make {d} {seed}', **cfg, 'train': tr},
              open(f'{d}/generator_config.json', 'w'), indent=1)
    print(d, 'written')


if __name__ == '__main__':
    if len(sys.argv) >= 3 and sys.argv[1] == 'check':
        check(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == 'make':
        make(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 2)
    else:
        sys.exit(__doc__ or 'usage: clip_fixture.py check DIR | make OUTDIR [SEED]')
