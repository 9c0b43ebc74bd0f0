"""What the reference tests share: where the repository and ../shared are, and the sqz binary
(each test script's first argument) run as a user runs it: tokenize, forward, greedy decoding."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(REPO, "..", "shared")


def sqz(*args, expect_fail=False):
    """stdout of `sqz ARGS`; a failure raises with its stderr (or, with expect_fail, stderr is
    returned and success raises)."""
    r = subprocess.run([sys.argv[1], *args], capture_output=True, text=True)
    if expect_fail:
        assert r.returncode != 0, f"sqz {' '.join(args)} should have failed"
        return r.stderr
    if r.returncode != 0:
        raise AssertionError(f"sqz {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r.stdout


def sqz_ids(model_dir, texts):
    """`sqz tokenize` ids of each text (special tokens included)."""
    args = ["tokenize", model_dir]
    for t in texts:
        args += ["--text", t]
    return [json.loads(line)["input_ids"] for line in sqz(*args).splitlines()]


def sqz_forward(model_dir, tmp, *flags, **arrays):
    """`sqz forward` on the named int64 arrays; its .npy outputs by name."""
    inputs, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
    for d in (inputs, out):  # a fresh directory per call: no input of an earlier model is left behind
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(inputs)
    for name, a in arrays.items():
        np.save(os.path.join(inputs, name + ".npy"), a)
    sqz("forward", model_dir, "--inputs", inputs, "--out", out, *flags)
    return {f[:-4]: np.load(os.path.join(out, f)) for f in os.listdir(out) if f.endswith(".npy")}


def greedy(model, ids, n, eos):
    """Greedy decoding by full forwards (model.generate imports torch.distributed.fsdp, which fails
    to import on Debian's torch 1.13 under Python 3.11)."""
    seq, new = torch.from_numpy(ids), []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(seq).logits[0, -1].argmax())
            new.append(nxt)
            if nxt == eos:
                break
            seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
    return new
