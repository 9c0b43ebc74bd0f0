"""The vision half of live_parity_test.py: sqz's ViT (libtorch and the runtime engine, from the
model dir and packed) against transformers' ViT models, and `sqz forward` on raw images against
ViTImageProcessor. Weights are drawn with initializer_range 0.2 so activations are O(1) and TOL is
a real bound.
"""
import os
import shutil

import numpy as np
import torch

from sqz_cli import sqz, sqz_forward

TOL = 1e-4  # max |sqz - transformers| (absolute on libtorch, relative on the runtime engine)


def check_vision(tmp, seeds):
    """ViT on random normalized pixels: logits or pooler output, last_hidden_state and every hidden state."""
    from transformers import ViTConfig, ViTForImageClassification, ViTModel
    lines = []
    for seed in seeds:
        torch.manual_seed(seed)
        cases = [("vit Model 4 heads, 32x32 in 8x8 patches", ViTModel(ViTConfig(
                      hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=32, patch_size=8,
                      initializer_range=0.2))),
                 ("vit ImageClassification 1 channel, 5 heads of 12, no qkv bias, gelu_new", ViTForImageClassification(ViTConfig(
                      hidden_size=60, num_hidden_layers=2, num_attention_heads=5, intermediate_size=64, image_size=24, patch_size=4,
                      num_channels=1, qkv_bias=False, hidden_act="gelu_new", num_labels=5, initializer_range=0.2)))]
        for name, model in cases:
            model.eval()
            d = os.path.join(tmp, "vit")
            shutil.rmtree(d, ignore_errors=True)
            model.save_pretrained(d, safe_serialization=True)
            c = model.config
            pixels = np.random.default_rng(seed).standard_normal((3, c.num_channels, c.image_size, c.image_size)).astype(np.float32)
            outs = sqz_forward(d, tmp, "--hidden-states", pixel_values=pixels)
            with torch.no_grad():
                ref = model(pixel_values=torch.from_numpy(pixels), output_hidden_states=True)
            worst = 0.0
            for key in ("logits", "last_hidden_state", "pooler_output"):
                if getattr(ref, key, None) is not None:
                    worst = max(worst, float(np.abs(outs[key] - getattr(ref, key).numpy()).max()))
            assert len(outs["hidden_states"]) == len(ref.hidden_states)
            for i, h in enumerate(ref.hidden_states):
                worst = max(worst, float(np.abs(outs["hidden_states"][i] - h.numpy()).max()))
            assert worst <= TOL, f"{name} (seed {seed}): max |sqz - transformers| = {worst:.3g} > {TOL}"
            lines.append(f"ok {name} (seed {seed}): max |diff| {worst:.2g}")
            if c.hidden_act == "gelu":  # the runtime's ViT engine (erf GELU), from the model dir and packed
                packed = os.path.join(tmp, "vit-packed")
                sqz("pack", d, "--precision", "fp32", "--out", packed, "--overwrite")
                for where in (d, packed):
                    got = sqz_forward(where, tmp, "--engine", "runtime", pixel_values=pixels)
                    rt = 0.0
                    for key in ("logits", "last_hidden_state"):
                        if getattr(ref, key, None) is not None:
                            want = getattr(ref, key).numpy()
                            rt = max(rt, float(np.abs(got[key] - want).max() / np.abs(want).max()))
                    assert rt <= TOL, f"{name} (seed {seed}): runtime engine ({where}) relative error {rt:.3g} > {TOL}"
                lines.append(f"ok {name} (seed {seed}): runtime engine fp32 (model dir and packed) within {rt:.2g} relative")
    return lines


def check_image_processor(tmp, seeds):
    """Raw uint8 images through `sqz forward` (images.npy + the dir's preprocessor_config.json): the
    pixel values must equal ViTImageProcessor's (Pillow's resize included) and the logits those of
    the model on them, on libtorch and (bilinear) on the runtime engine. Also a ViT whose heads
    transformers pruned (config.pruned_heads)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor
    lines = []
    processors = [("bilinear 32x32, mean/std 0.5", dict(size={"height": 32, "width": 32})),
                  ("bicubic 32x32, ImageNet mean/std", dict(size={"height": 32, "width": 32}, resample=3,
                                                            image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])),
                  ("lanczos 32x32", dict(size={"height": 32, "width": 32}, resample=1)),
                  ("box 32x32, no normalize", dict(size={"height": 32, "width": 32}, resample=4, do_normalize=False)),
                  ("no resize", dict(do_resize=False))]
    for seed in seeds:
        torch.manual_seed(seed)
        model = ViTForImageClassification(ViTConfig(hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                                    image_size=32, patch_size=8, num_labels=3, initializer_range=0.2))
        model.prune_heads({0: [1, 3], 1: [2]})
        model.eval()
        d = os.path.join(tmp, "vit-images")
        shutil.rmtree(d, ignore_errors=True)
        model.save_pretrained(d, safe_serialization=True)
        rng = np.random.default_rng(seed)
        for name, kwargs in processors:
            processor = ViTImageProcessor(**kwargs)
            processor.save_pretrained(d)
            pixel_worst = logit_worst = 0.0
            for shape in ((2, 57, 41, 3), (2, 10, 13, 3), (1, 32, 32, 3)):
                if not processor.do_resize and shape[1:3] != (32, 32):
                    continue
                images = rng.integers(0, 256, size=shape, dtype=np.uint8)
                want = processor(list(images), return_tensors="np")["pixel_values"]
                outs = sqz_forward(d, tmp, images=images)
                pixel_diff = float(np.abs(outs["pixel_values"] - want).max())
                assert pixel_diff <= 1e-6, f"{name} {shape} (seed {seed}): pixel values differ by {pixel_diff:.3g}"
                with torch.no_grad():
                    ref = model(pixel_values=torch.from_numpy(want)).logits.numpy()
                worst = float(np.abs(outs["logits"] - ref).max())
                assert worst <= TOL, f"{name} {shape} (seed {seed}): max |logit diff| {worst:.3g} > {TOL}"
                if name.startswith("bilinear"):  # the runtime's ViT engine on the same images, a head-pruned model
                    rt = sqz_forward(d, tmp, "--engine", "runtime", images=images)["logits"]
                    rt_err = float(np.abs(rt - ref).max() / np.abs(ref).max())
                    assert rt_err <= TOL, f"{name} {shape} (seed {seed}): runtime engine relative logit error {rt_err:.3g} > {TOL}"
                pixel_worst, logit_worst = max(pixel_worst, pixel_diff), max(logit_worst, worst)
            lines.append(f"ok image processor {name} (seed {seed}): max |pixel diff| {pixel_worst:.2g} to ViTImageProcessor, "
                         f"max |logit diff| {logit_worst:.2g} on a head-pruned ViT")
    return lines
