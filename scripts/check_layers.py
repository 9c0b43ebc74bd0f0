#!/usr/bin/env python3
"""Fails on an #include that goes against sqz's layer order (docs/architecture.md).

A file under src/<folder>/ may include its own folder and the folders below it in LAYERS, except
those NOT_BELOW names for it; a folder missing from LAYERS, a kernel that includes torch, or a file over MAX_LINES also fails.
Usage: check_layers.py [SRC_DIR]   (default: src/ beside this script's folder)
"""
import pathlib
import re
import sys

# Lowest first. Each folder sees the folders before it, never the ones after it.
LAYERS = [
    "core",      # errors, files, progress, processes; no torch
    "kernels",   # raw-pointer CPU kernels per ISA; no torch
    "io",        # file formats: safetensors, npy, JSON, GGUF, compressed-tensors codecs, tokenizers
    "dist",      # data-parallel groups on c10d (Gloo), their store and the local launcher
    "nn",        # libtorch modules with compression sites
    "models",    # HF families, registry, load/save, family surgery, generation
    "data",      # tasks, readers, objectives, metrics, dev-set evaluation
    "train",     # recipes and the training loop
    "compress",  # sites, selectors, pruners, quantizers, distiller, compressed-tensors export
    "speedup",   # masks -> dependency groups -> smaller matrices
    "runtime",   # the autograd-free engine and runtime dirs
    "eval",      # latency, plots, bench and its peers
    "pipeline",  # `sqz compress` as stages over a resolved recipe
    "cli",       # one cmd_<name>.cc per command
]
# Lower layers a layer still may not include: the runtime deploys a model without the training
# stack, so it reads formats through io and nothing of data, train, compress or speedup.
NOT_BELOW = {"runtime": {"data", "train", "compress", "speedup", "dist"}}
# Separate executables that include nothing of sqz's.
STANDALONE = {"tools"}
NO_TORCH = {"core", "kernels"}
MAX_LINES = 500

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')
TORCH = ("torch/", "ATen/", "c10/")


def check(src: pathlib.Path) -> list[str]:
    rank = {name: i for i, name in enumerate(LAYERS)}
    errors = []
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".h", ".cc", ".in") or not path.is_file():
            continue
        rel = path.relative_to(src)
        if len(rel.parts) == 1:
            continue  # build_paths.h.in
        folder = rel.parts[0]
        if folder not in rank and folder not in STANDALONE:
            errors.append(f"src/{rel}: folder '{folder}' is not in the layer order of scripts/check_layers.py")
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_LINES:
            errors.append(f"src/{rel}: {len(lines)} lines (the limit is {MAX_LINES})")
        for number, line in enumerate(lines, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            target = m.group(1)
            where = f"src/{rel}:{number}"
            if folder in NO_TORCH and target.startswith(TORCH):
                errors.append(f"{where}: '{folder}' must not include torch ({target})")
            top = target.split("/", 1)[0]
            if "/" not in target or (top not in rank and top not in STANDALONE):
                continue  # a system or third-party header
            if folder in STANDALONE:
                errors.append(f"{where}: {folder}/ is a standalone program and includes {target}")
            elif top in STANDALONE or rank[top] > rank[folder]:
                errors.append(f"{where}: '{folder}' includes '{target}' from a higher layer ({top})")
            elif top in NOT_BELOW.get(folder, set()):
                errors.append(f"{where}: '{folder}' must not include '{top}' ({target})")
    return errors


def main() -> int:
    src = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent / "src"
    if not src.is_dir():
        print(f"check_layers: {src}: not a directory", file=sys.stderr)
        return 2
    errors = check(src)
    for e in errors:
        print(e, file=sys.stderr)
    print(f"check_layers: {len(errors)} violation(s) of the layer order {' < '.join(LAYERS)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
