"""Build the mini world's datasets from real images and pack them for shipping.

Sources (Debian packages):
  * ``dataset-fashion-mnist`` (MIT, Zalando SE): ``/usr/share/datasets/fashion-mnist/``
  * ``openclipart-png`` (public domain): ``/usr/share/openclipart/png/``

Each dataset is written in the upstream (CoOp) on-disk layout::

    <dataset_dir>/images/<class_folder>/<name>.png      few-shot / val / test images
    <dataset_dir>/split_zhou_<Name>.json               {"train", "val", "test"}: [path, label, classname]
    <dataset_dir>/pretrain/<class_folder>/<name>.png   MiniCLIP pretraining images (not in the split)
    <dataset_dir>/pretrain.json                        [path, label, classname], paths under pretrain/
    <dataset_dir>/captions.txt                         "<split path>\\t<sentence>" per split image
    <dataset_dir>/LICENSE.txt

and packed as a byte-reproducible ``mini_world/<dataset_dir>.tar.xz``. Every
random choice uses the ``--seed``. Captions state facts measured on the stored
image or read from the source file (clip-art title and file name), never the
class name. The build also runs from images already shipped (a clip-art tree of
shipped PNGs, IDX files written from shipped Fashion-MNIST images), which is
how the tests exercise it on machines without the Debian packages.

Usage:
    python tools/build_mini_world.py build            # rebuild mini_world/*.tar.xz
    python tools/build_mini_world.py extract [--root DIR]   # unpack; prints the DATA root
"""
import argparse
import colorsys
import gzip
import hashlib
import io
import json
import math
import random
import re
import shutil
import sys
import tarfile
import tempfile
import unicodedata
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dassl.utils.errors import InputError  # noqa: E402
from datasets.mini_world import (  # noqa: E402
    ARCHIVE_SUFFIX,
    PRETRAIN_DIR,
    PRETRAIN_LIST,
    SHIPPED_DIR,
    default_root,
    extract_all,
)


class MissingSourceError(InputError, FileNotFoundError):
    """A source folder or file of the builder is missing; the message names the package or flag that gives it."""


class SourceDataError(InputError, ValueError):
    """A source holds something other than what the builder needs (format, too few images)."""

IMAGE_SIZE = 32
IMAGE_DIR = "images"
CAPTIONS = "captions.txt"
FASHION_DIR = "mini_fashion_mnist"
CLIPART_DIR = "mini_clipart"
SPLIT_NAMES = {FASHION_DIR: "MiniFashionMNIST", CLIPART_DIR: "MiniClipart"}
DEFAULT_FASHION_SOURCE = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_CLIPART_SOURCE = Path("/usr/share/openclipart/png")

FASHION_CLASSES = (
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot",
)
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# Images per class: pretrain, train, val from the official training file; test from t10k.
DEFAULT_FASHION_COUNTS = (300, 40, 20, 100)

# Clip-art class name -> openclipart folders ("/**": the folder and all its subfolders).
# Chosen for plain names and >= 33 images that no other class shares: e.g. "party" and
# "holiday" repeat pictures of other classes, "map symbol" repeats "pictogram".
CLIPART_CLASSES = {
    "arrow": ("shapes/arrows",),
    "bird": ("animals/birds/**",),
    "boat": ("transportation/boating",),
    "button": ("computer/buttons",),
    "clothing": ("people/clothing/**",),
    "computer": ("computer/hardware",),
    "dessert": ("food/desserts",),
    "drink": ("food/beverages/**",),
    "electronics": ("electronics/**",),
    "flag": ("signs_and_symbols/flags/**",),
    "fruit": ("food/fruit",),
    "house": ("buildings/homes",),
    "icon": ("computer/icons/lemon-theme/apps",),
    "insect": ("animals/bugs",),
    "led light": ("signs_and_symbols/led",),
    "mammal": ("animals/mammals/**",),
    "map": ("geography",),
    "music": ("recreation/music",),
    "office supply": ("office/**",),
    "pattern": ("special/patterns",),
    "person": ("people",),
    "pictogram": ("transportation/aiga-symbols",),
    "plant": ("plants/**",),
    "playing card": (
        "recreation/games/cards/bordered", "recreation/games/cards/ornamental",
        "recreation/games/cards/simple", "recreation/games/cards/white",
    ),
    "puzzle piece": ("shapes/jigsaw",),
    "road sign": ("transportation/roadsigns",),
    "smiley": ("people/smilies",),
    "sport": ("recreation/sports",),
    "star": ("shapes/stars",),
    "stick figure": ("people/stickmen",),
    "tool": ("tools",),
    "vehicle": ("transportation/vehicles",),
    "weapon": ("tools/weapons",),
}
DEFAULT_CLIPART_CAP = 80
MAX_SOURCE_PIXELS = 16_000_000
# Per clip-art class: fractions of the (capped) images, with minimum counts.
CLIPART_TEST = (0.25, 8)
CLIPART_VAL = (0.10, 4)
CLIPART_TRAIN = (0.30, 16)
CLIPART_MIN_PRETRAIN = 5

LICENSES = {
    FASHION_DIR: (
        "Images from Fashion-MNIST (https://github.com/zalandoresearch/fashion-mnist),\n"
        "Copyright (c) 2017 Zalando SE, released under the MIT License (Debian package\n"
        "dataset-fashion-mnist). Padded from 28x28 to 32x32 by tools/build_mini_world.py.\n\n"
        "Permission is hereby granted, free of charge, to any person obtaining a copy of\n"
        "this software and associated documentation files (the \"Software\"), to deal in\n"
        "the Software without restriction, including without limitation the rights to\n"
        "use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of\n"
        "the Software, and to permit persons to whom the Software is furnished to do so,\n"
        "subject to the following conditions:\n\n"
        "The above copyright notice and this permission notice shall be included in all\n"
        "copies or substantial portions of the Software.\n\n"
        "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR\n"
        "IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS\n"
        "FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR\n"
        "COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER\n"
        "IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN\n"
        "CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.\n"
    ),
    CLIPART_DIR: (
        "Images from the Open Clip Art Library (http://www.openclipart.org), Debian\n"
        "package openclipart-png. Every image is dedicated to the public domain by its\n"
        "author (Creative Commons Public Domain Dedication); the author and title of\n"
        "each source file are in its PNG metadata. Composited on white and resized to\n"
        "32x32 by tools/build_mini_world.py.\n"
    ),
}


# ---------------------------------------------------------------- small helpers

def class_folder(classname):
    """Folder name of a class: spaces become underscores."""
    return classname.replace(" ", "_")


def pixel_digest(image):
    """Identity of an image's pixels, for removing duplicates."""
    return hashlib.sha256(image.mode.encode() + image.tobytes()).hexdigest()


def ascii_words(text):
    """Plain ASCII version of free text (accents folded, mojibake and odd symbols dropped)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^A-Za-z0-9' ,.&+-]", " ", folded).split())


def file_name_words(stem):
    """Words of a clip-art file name: no numbers, no one-letter fragments."""
    words = re.split(r"[_\-\s.]+", stem.lower())
    return " ".join(w for w in words if len(w) > 1 and not w.isdigit())


def clean_title(title):
    """A clip-art title as a short phrase: no parenthesised remarks, at most 60 characters."""
    title = ascii_words(re.sub(r"\([^)]*\)", " ", title or ""))
    return title[:60].rstrip(" ,.-")


def png_bytes(image, title=None, source=None):
    """Deterministic PNG bytes; the source's title and path travel in the metadata."""
    info = PngImagePlugin.PngInfo()
    if title:
        info.add_text("Title", title)
    if source:
        info.add_text("Source", source)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=0)
    return buffer.getvalue()


def take(count_fraction, total):
    fraction, minimum = count_fraction
    return max(minimum, round(fraction * total))


# ---------------------------------------------------------------- captions

COLOUR_WORDS = ("black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown")


def colour_name(r, g, b):
    """Everyday colour word of one RGB pixel (0-255)."""
    h, s, v = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
    hue = h * 360
    if v < 0.2:
        return "black"
    if s < 0.18:
        return "white" if v > 0.9 else "grey"
    if (hue < 40 or hue >= 345) and v < 0.6:
        return "brown"
    for limit, name in ((15, "red"), (40, "orange"), (70, "yellow"), (165, "green"), (255, "blue"),
                        (290, "purple"), (345, "pink")):
        if hue < limit:
            return name
    return "red"


def shape_phrase(mask):
    """Aspect and size of the object's bounding box and how much of the frame it covers."""
    rows, cols = np.nonzero(mask)
    height = rows.max() - rows.min() + 1
    width = cols.max() - cols.min() + 1
    ratio = width / height
    aspect = "a wide shape" if ratio > 1.3 else "a tall shape" if ratio < 0.77 else "a roughly square shape"
    coverage = mask.mean()
    extent = (
        "that fills most of the frame" if coverage > 0.5
        else "that covers part of the frame" if coverage > 0.2
        else "that covers a small part of the frame"
    )
    return f"{aspect} of {width}x{height} pixels {extent}"


def describe_clipart(rgb, title, stem):
    """One sentence from the clip-art file's title and name and its measured colours and shape."""
    pixels = np.asarray(rgb, dtype=np.int32)
    mask = (255 * 3 - pixels.sum(axis=2)) > 30
    if not mask.any():
        mask = np.ones(mask.shape, dtype=bool)
    names = [colour_name(*pixel) for pixel in pixels[mask]]
    counts = sorted(((names.count(c), c) for c in COLOUR_WORDS if c in names), key=lambda t: (-t[0], t[1]))
    colours = [c for n, c in counts[:2] if n >= 0.2 * len(names)] or [counts[0][1]]
    brightness = pixels[mask].mean() / 255
    tone = "dark" if brightness < 0.35 else "light" if brightness > 0.7 else "medium-toned"
    parts = [f'A clip-art image titled "{title}"' if title else "An untitled clip-art image"]
    words = file_name_words(stem)
    if words and words != title.lower():
        parts.append(f' from the file "{words}"')
    return (
        "".join(parts)
        + f", drawn mostly in {' and '.join(colours)}: {shape_phrase(mask)} on a white background, {tone} overall."
    )


def describe_fashion(grey):
    """One sentence from measured facts of a grayscale Fashion-MNIST picture."""
    pixels = np.asarray(grey, dtype=np.float64) / 255
    mask = pixels > 0.1
    if not mask.any():
        mask = np.ones(mask.shape, dtype=bool)
    values = pixels[mask]
    tone = "dark grey" if values.mean() < 0.35 else "light grey" if values.mean() > 0.6 else "mid-grey"
    texture = "a patterned" if values.std() > 0.22 else "an evenly shaded"
    mirrored = np.abs(mask.astype(float) - mask[:, ::-1]).mean() / max(mask.mean(), 1e-6)
    symmetry = "left-right symmetric" if mirrored < 0.25 else "asymmetric"
    return (
        f"A small grayscale photo of {texture}, {tone}, {symmetry} object: "
        f"{shape_phrase(mask)} on a black background."
    )


# ---------------------------------------------------------------- Fashion-MNIST

def read_idx(path):
    """Array stored in a (gzipped) IDX file, as Fashion-MNIST ships them."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    zero, dtype_code, ndim = data[0] * 256 + data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise SourceDataError(f"{path} is not an unsigned-byte IDX file; pass Fashion-MNIST's .gz files")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def write_idx(path, array):
    """Inverse of ``read_idx`` (used to turn shipped images back into a source)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
        handle.write(header + array.tobytes())


def pad_to_size(grey_array):
    """Centre a square grayscale image (at most IMAGE_SIZE) on a black IMAGE_SIZE canvas."""
    height, width = grey_array.shape
    if height > IMAGE_SIZE or width > IMAGE_SIZE:
        raise SourceDataError(f"Fashion-MNIST image of {height}x{width} is larger than {IMAGE_SIZE}x{IMAGE_SIZE}")
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    top, left = (IMAGE_SIZE - height) // 2, (IMAGE_SIZE - width) // 2
    canvas[top:top + height, left:left + width] = grey_array
    return Image.fromarray(canvas, mode="L")


def load_fashion_source(source):
    source = Path(source)
    arrays = {}
    for part, (images_file, labels_file) in FASHION_FILES.items():
        for name in (images_file, labels_file):
            if not (source / name).is_file():
                raise MissingSourceError(
                    f"{source / name} not found; install the Debian package dataset-fashion-mnist "
                    "or pass --fashion-source"
                )
        arrays[part] = (read_idx(source / images_file), read_idx(source / labels_file))
    return arrays


def select_unique(candidates, count, seen):
    """The first ``count`` candidates whose pixels are not in ``seen`` (which is updated)."""
    chosen = []
    for item in candidates:
        if len(chosen) == count:
            break
        digest = pixel_digest(item["image"])
        if digest not in seen:
            seen.add(digest)
            chosen.append(item)
    if len(chosen) < count:
        raise SourceDataError(f"only {len(chosen)} distinct images available, {count} needed; lower the counts")
    return chosen


def fashion_items(source, counts, seed):
    """{part: [item]} with part in pretrain/train/val/test; items carry label, image, name."""
    arrays = load_fashion_source(source)
    rng = random.Random(seed)
    parts = {"pretrain": [], "train": [], "val": [], "test": []}
    seen = set()
    classnames = sorted(FASHION_CLASSES)
    for label, classname in enumerate(classnames):
        source_label = FASHION_CLASSES.index(classname)
        for file_part, wanted in (("train", ("pretrain", "train", "val")), ("t10k", ("test",))):
            images, labels = arrays[file_part]
            indices = [int(i) for i in np.flatnonzero(labels == source_label)]
            rng.shuffle(indices)
            needed = sum(counts[p] for p in wanted)
            candidates = (
                {"label": label, "classname": classname, "image": pad_to_size(images[i]),
                 "name": f"{file_part}_{i:05d}", "source": f"{FASHION_FILES[file_part][0]}[{i}]"}
                for i in indices
            )
            chosen = select_unique(candidates, needed, seen)
            start = 0
            for part in wanted:
                parts[part].extend(chosen[start:start + counts[part]])
                start += counts[part]
    for items in parts.values():
        for item in items:
            item["caption"] = describe_fashion(item["image"])
    return classnames, parts


# ---------------------------------------------------------------- clip-art

def clipart_files(source, folders):
    """PNG files of the given folders (``/**`` = recursive), sorted."""
    files = set()
    for folder in folders:
        recursive = folder.endswith("/**")
        base = Path(source) / folder.removesuffix("/**")
        if not base.is_dir():
            raise MissingSourceError(
                f"clip-art folder {base} not found; install the Debian package openclipart-png "
                "or pass --clipart-source"
            )
        files.update(base.rglob("*.png") if recursive else base.glob("*.png"))
    return sorted(files)


def render_clipart(path):
    """Transparent clip-art -> object cropped, centred on a white square, IMAGE_SIZE RGB.

    Returns ``(None, title)`` for empty images and for the few posters above
    MAX_SOURCE_PIXELS (they take minutes to decode and are all also drawn smaller).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except Image.DecompressionBombError:
            return None, ""
    with image:
        title = image.info.get("Title", "")
        if image.size[0] * image.size[1] > MAX_SOURCE_PIXELS:
            return None, title
        rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    flat = Image.alpha_composite(white, rgba).convert("RGB")
    ink = np.asarray(flat, dtype=np.int32).sum(axis=2) < 255 * 3 - 30
    if not ink.any():
        return None, title
    rows, cols = np.nonzero(ink)
    box = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    crop = flat.crop(box)
    side = max(crop.size)
    side += max(2, side // 16) * 2
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(crop, ((side - crop.size[0]) // 2, (side - crop.size[1]) // 2))
    return canvas.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS), title


def unique_name(stem, taken):
    base = re.sub(r"[^a-z0-9_-]+", "_", stem.lower()).strip("_") or "image"
    name, index = base, 2
    while name in taken:
        name, index = f"{base}_{index}", index + 1
    taken.add(name)
    return name


def clipart_items(source, classes, cap, seed):
    """Render, de-duplicate (pixels seen in two classes are dropped from both) and split clip-art."""
    rng = random.Random(seed)
    classnames = sorted(classes)
    rendered, owners = {}, {}
    for classname in classnames:
        rendered[classname] = []
        for path in clipart_files(source, classes[classname]):
            image, title = render_clipart(path)
            if image is None:
                continue
            digest = pixel_digest(image)
            if any(item["digest"] == digest for item in rendered[classname]):
                continue
            owners.setdefault(digest, set()).add(classname)
            rendered[classname].append({
                "image": image, "title": clean_title(title), "stem": path.stem, "digest": digest,
                "source": path.relative_to(source).as_posix(),
            })
    parts = {"pretrain": [], "train": [], "val": [], "test": []}
    for label, classname in enumerate(classnames):
        items = [item for item in rendered[classname] if len(owners[item["digest"]]) == 1]
        rng.shuffle(items)
        items = items[:cap]
        sizes = {"test": take(CLIPART_TEST, len(items)), "val": take(CLIPART_VAL, len(items)),
                 "train": take(CLIPART_TRAIN, len(items))}
        sizes["pretrain"] = len(items) - sum(sizes.values())
        if sizes["pretrain"] < CLIPART_MIN_PRETRAIN:
            raise SourceDataError(
                f"clip-art class {classname!r} has only {len(items)} distinct images, too few for "
                f"{sizes} plus {CLIPART_MIN_PRETRAIN} pretraining images; give it more source folders or drop it"
            )
        taken, start = set(), 0
        for part in ("test", "val", "train", "pretrain"):
            for item in items[start:start + sizes[part]]:
                item.update(label=label, classname=classname, name=unique_name(item["stem"], taken),
                            caption=describe_clipart(item["image"], item["title"], item["stem"]))
                parts[part].append(item)
            start += sizes[part]
    return classnames, parts


# ---------------------------------------------------------------- writing and packing

def write_dataset(folder, split_name, parts, license_text):
    """Write one dataset folder in the upstream layout (see the module docstring)."""
    if folder.exists():
        shutil.rmtree(folder)
    split, pretrain, captions = {"train": [], "val": [], "test": []}, [], []
    for part, items in parts.items():
        top = PRETRAIN_DIR if part == "pretrain" else IMAGE_DIR
        for item in items:
            relative = f"{class_folder(item['classname'])}/{item['name']}.png"
            path = folder / top / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png_bytes(item["image"], item.get("title"), item["source"]))
            entry = [relative, item["label"], item["classname"]]
            if part == "pretrain":
                pretrain.append(entry)
            else:
                split[part].append(entry)
                captions.append(f"{relative}\t{item['caption']}")
    (folder / f"split_zhou_{split_name}.json").write_text(json.dumps(split, indent=4))
    (folder / PRETRAIN_LIST).write_text(json.dumps(pretrain, indent=4))
    (folder / CAPTIONS).write_text("\n".join(sorted(captions)) + "\n")
    (folder / "LICENSE.txt").write_text(license_text)


def pack(folder, archive):
    """Byte-reproducible tar.xz of ``folder`` (sorted entries, zero times and owners)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    paths = [folder] + sorted(folder.rglob("*"))
    partial = archive.with_name(archive.name + ".part")
    with tarfile.open(partial, "w:xz", preset=6, format=tarfile.GNU_FORMAT) as tar:
        for path in paths:
            info = tar.gettarinfo(str(path), arcname=path.relative_to(folder.parent).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if path.is_dir() else 0o644
            if path.is_dir():
                tar.addfile(info)
            else:
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
    partial.replace(archive)


def summarise(name, classnames, parts):
    counts = {part: len(items) for part, items in parts.items()}
    base = math.ceil(len(classnames) / 2)
    print(f"{name}: {len(classnames)} classes (base {base}, new {len(classnames) - base}); {counts}")


def build(args):
    wanted = set(args.datasets)
    with tempfile.TemporaryDirectory(prefix="mini_world_") as staging:
        staging = Path(staging)
        if FASHION_DIR in wanted:
            counts = dict(zip(("pretrain", "train", "val", "test"), args.fashion_counts))
            classnames, parts = fashion_items(args.fashion_source, counts, args.seed)
            summarise(FASHION_DIR, classnames, parts)
            write_dataset(staging / FASHION_DIR, SPLIT_NAMES[FASHION_DIR], parts, LICENSES[FASHION_DIR])
            pack(staging / FASHION_DIR, Path(args.out) / f"{FASHION_DIR}{ARCHIVE_SUFFIX}")
        if CLIPART_DIR in wanted:
            classes = CLIPART_CLASSES
            if args.clipart_classes:
                unknown = sorted(set(args.clipart_classes) - set(CLIPART_CLASSES))
                if unknown:
                    raise SystemExit(f"unknown clip-art classes {unknown}; choose from {sorted(CLIPART_CLASSES)}")
                classes = {name: CLIPART_CLASSES[name] for name in args.clipart_classes}
            classnames, parts = clipart_items(args.clipart_source, classes, args.clipart_cap, args.seed)
            summarise(CLIPART_DIR, classnames, parts)
            write_dataset(staging / CLIPART_DIR, SPLIT_NAMES[CLIPART_DIR], parts, LICENSES[CLIPART_DIR])
            pack(staging / CLIPART_DIR, Path(args.out) / f"{CLIPART_DIR}{ARCHIVE_SUFFIX}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="build the datasets from the Debian sources and pack them")
    make.add_argument("--fashion-source", type=Path, default=DEFAULT_FASHION_SOURCE)
    make.add_argument("--clipart-source", type=Path, default=DEFAULT_CLIPART_SOURCE)
    make.add_argument("--out", type=Path, default=SHIPPED_DIR, help="folder receiving the .tar.xz archives")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--datasets", nargs="+", default=[FASHION_DIR, CLIPART_DIR], choices=[FASHION_DIR, CLIPART_DIR])
    make.add_argument("--fashion-counts", type=int, nargs=4, default=DEFAULT_FASHION_COUNTS,
                      metavar=("PRETRAIN", "TRAIN", "VAL", "TEST"), help="images per class")
    make.add_argument("--clipart-cap", type=int, default=DEFAULT_CLIPART_CAP, help="most images per clip-art class")
    make.add_argument("--clipart-classes", nargs="+", help="build only these clip-art classes (smoke runs)")
    unpack = commands.add_parser("extract", help="unpack the shipped archives; prints the DATA root")
    unpack.add_argument("--root", type=Path, default=None, help="default: $MINI_WORLD_ROOT or ~/.cache/...")
    unpack.add_argument("--shipped", type=Path, default=SHIPPED_DIR, help="folder holding the .tar.xz archives")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.command == "build":
        build(args)
    else:
        print(extract_all(args.root if args.root is not None else default_root(), args.shipped))


def cli():
    """Entry point: a missing or unusable source is one line naming the fix, not a traceback."""
    try:
        main()
    except InputError as error:
        sys.exit(f"build_mini_world.py: error: {error}")


if __name__ == "__main__":
    cli()
