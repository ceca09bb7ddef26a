"""Tiny dataset trees in the exact upstream layouts, for loader and doctor tests.

Every class gets ``IMAGES_PER_CLASS`` 8x8 images. Split files put images 0-4
of a class in train, 5-6 in val and 7-9 in test; annotation files (the
fallback sources) list 0-6 as train+val and 7-9 as test. ``FAKES`` maps each
dataset class name to its builder and the class names it must produce.
"""
import io
import json
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.io import savemat

IMAGES_PER_CLASS = 10
TRAIN, VAL = range(0, 5), range(5, 7)


def _jpeg_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 60, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


JPEG = _jpeg_bytes()


def write_image(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(JPEG)


def write_text(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))


def part_of(index):
    return "train" if index in TRAIN else "val" if index in VAL else "test"


def write_split(path, rows):
    """``rows``: ``[(relative_path, label, classname, image_index)]`` -> split_zhou json (indent 4)."""
    split = {"train": [], "val": [], "test": []}
    for relative, label, classname, index in rows:
        split[part_of(index)].append([relative, label, classname])
    with open(path, "w") as f:
        json.dump(split, f, indent=4)


def _folder_dataset(root, dataset_dir, image_dir, folders, classnames, split_file, extra_folders=()):
    """One folder per class; labels follow the given (sorted, kept) folders."""
    images = os.path.join(root, dataset_dir, image_dir)
    rows = []
    for label, (folder, classname) in enumerate(zip(folders, classnames)):
        for index in range(IMAGES_PER_CLASS):
            name = f"image_{index:04d}.jpg"
            write_image(os.path.join(images, folder, name))
            rows.append((f"{folder}/{name}", label, classname, index))
    for folder in extra_folders:
        write_image(os.path.join(images, folder, "image_0000.jpg"))
    write_split(os.path.join(root, dataset_dir, split_file), rows)
    return os.path.join(root, dataset_dir)


CALTECH_FOLDERS = ("Faces", "Leopards", "Motorbikes", "accordion", "airplanes")
CALTECH_NAMES = ("face", "leopard", "motorbike", "accordion", "airplane")


def make_caltech101(root):
    return _folder_dataset(root, "caltech-101", "101_ObjectCategories", CALTECH_FOLDERS, CALTECH_NAMES,
                           "split_zhou_Caltech101.json", extra_folders=("BACKGROUND_Google", "Faces_easy"))


DTD_NAMES = ("banded", "blotchy", "braided")


def make_dtd(root):
    return _folder_dataset(root, "dtd", "images", DTD_NAMES, DTD_NAMES, "split_zhou_DescribableTextures.json")


FOOD_NAMES = ("apple_pie", "baby_back_ribs", "baklava")


def make_food101(root):
    return _folder_dataset(root, "food-101", "images", FOOD_NAMES, FOOD_NAMES, "split_zhou_Food101.json")


EUROSAT_FOLDERS = ("AnnualCrop", "Forest", "SeaLake")
EUROSAT_NAMES = ("Annual Crop Land", "Forest", "Sea or Lake")


def make_eurosat(root):
    return _folder_dataset(root, "eurosat", "2750", EUROSAT_FOLDERS, EUROSAT_NAMES, "split_zhou_EuroSAT.json")


UCF_ACTIONS = ("ApplyEyeMakeup", "Archery", "YoYo")
UCF_NAMES = ("Apply_Eye_Makeup", "Archery", "Yo_Yo")


def make_ucf101(root):
    dataset = os.path.join(root, "ucf101")
    rows, trainlist, testlist = [], [], []
    for label, (action, classname) in enumerate(zip(UCF_ACTIONS, UCF_NAMES)):
        for index in range(IMAGES_PER_CLASS):
            video = f"v_{action}_g{index + 1:02d}_c01"
            write_image(os.path.join(dataset, "UCF-101-midframes", classname, video + ".jpg"))
            rows.append((f"{classname}/{video}.jpg", label, classname, index))
            if index in TRAIN or index in VAL:
                trainlist.append(f"{action}/{video}.avi {label + 1}")
            else:
                testlist.append(f"{action}/{video}.avi")
    lists = os.path.join(dataset, "ucfTrainTestlist")
    write_text(os.path.join(lists, "classInd.txt"), [f"{i + 1} {a}" for i, a in enumerate(UCF_ACTIONS)])
    write_text(os.path.join(lists, "trainlist01.txt"), trainlist)
    write_text(os.path.join(lists, "testlist01.txt"), testlist)
    write_split(os.path.join(dataset, "split_zhou_UCF101.json"), rows)
    return dataset


PET_BREEDS = ("Abyssinian", "american_bulldog", "Bengal")
PET_NAMES = ("abyssinian", "american_bulldog", "bengal")


def make_oxford_pets(root):
    dataset = os.path.join(root, "oxford_pets")
    rows, trainval, test = [], [], []
    for label, (breed, classname) in enumerate(zip(PET_BREEDS, PET_NAMES)):
        species = 1 if breed[0].isupper() else 2
        for index in range(IMAGES_PER_CLASS):
            name = f"{breed}_{index + 1}"
            write_image(os.path.join(dataset, "images", name + ".jpg"))
            rows.append((name + ".jpg", label, classname, index))
            (test if part_of(index) == "test" else trainval).append(f"{name} {label + 1} {species} {label + 1}")
    write_text(os.path.join(dataset, "annotations", "trainval.txt"), trainval)
    write_text(os.path.join(dataset, "annotations", "test.txt"), test)
    write_split(os.path.join(dataset, "split_zhou_OxfordPets.json"), rows)
    return dataset


CAR_MODELS = ("AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi TTS Coupe 2012")
CAR_NAMES = ("2000 AM General Hummer SUV", "2012 Acura RL Sedan", "2012 Audi TTS Coupe")
CAR_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")


def _car_annotations(records):
    table = np.zeros((1, len(records)), dtype=[(field, object) for field in CAR_FIELDS])
    for position, (label, fname) in enumerate(records):
        table[0, position] = (np.array([[1]]), np.array([[1]]), np.array([[8]]), np.array([[8]]),
                              np.array([[label + 1]], dtype=np.uint8), np.array([fname]))
    return {"annotations": table}


def make_stanford_cars(root):
    dataset = os.path.join(root, "stanford_cars")
    rows, train_records, test_records = [], [], []
    for label, classname in enumerate(CAR_NAMES):
        for index in range(IMAGES_PER_CLASS):
            is_test = part_of(index) == "test"
            folder, records = ("cars_test", test_records) if is_test else ("cars_train", train_records)
            fname = f"{len(records) + 1:05d}.jpg"
            write_image(os.path.join(dataset, folder, fname))
            records.append((label, fname))
            rows.append((f"{folder}/{fname}", label, classname, index))
    os.makedirs(os.path.join(dataset, "devkit"))
    savemat(os.path.join(dataset, "devkit", "cars_train_annos.mat"), _car_annotations(train_records))
    savemat(os.path.join(dataset, "cars_test_annos_withlabels.mat"), _car_annotations(test_records))
    savemat(os.path.join(dataset, "devkit", "cars_meta.mat"),
            {"class_names": np.array([list(CAR_MODELS)], dtype=object)})
    write_split(os.path.join(dataset, "split_zhou_StanfordCars.json"), rows)
    return dataset


FLOWER_NAMES = ("pink primrose", "hard-leaved pocket orchid", "canterbury bells")


def make_oxford_flowers(root):
    dataset = os.path.join(root, "oxford_flowers")
    rows, labels = [], []
    for index in range(IMAGES_PER_CLASS):
        for label, classname in enumerate(FLOWER_NAMES):
            name = f"image_{len(labels) + 1:05d}.jpg"
            write_image(os.path.join(dataset, "jpg", name))
            labels.append(label + 1)
            rows.append((name, label, classname, index))
    savemat(os.path.join(dataset, "imagelabels.mat"), {"labels": np.array([labels], dtype=np.uint8)})
    with open(os.path.join(dataset, "cat_to_name.json"), "w") as f:
        json.dump({str(label + 1): name for label, name in enumerate(FLOWER_NAMES)}, f)
    write_split(os.path.join(dataset, "split_zhou_OxfordFlowers.json"), rows)
    return dataset


AIRCRAFT_NAMES = ("707-320", "A300B4", "F-16A/B")


def make_fgvc_aircraft(root):
    dataset = os.path.join(root, "fgvc_aircraft")
    parts = {"train": [], "val": [], "test": []}
    for label, variant in enumerate(AIRCRAFT_NAMES):
        for index in range(IMAGES_PER_CLASS):
            image_id = f"{1000000 + label * 100 + index}"
            write_image(os.path.join(dataset, "images", image_id + ".jpg"))
            parts[part_of(index)].append(f"{image_id} {variant}")
    write_text(os.path.join(dataset, "variants.txt"), AIRCRAFT_NAMES)
    for part, lines in parts.items():
        write_text(os.path.join(dataset, f"images_variant_{part}.txt"), lines)
    return dataset


SUN_FOLDERS = ("a/abbey", "a/apse/indoor", "b/bakery/shop")
SUN_NAMES = ("abbey", "indoor apse", "shop bakery")


def make_sun397(root):
    dataset = os.path.join(root, "sun397")
    rows, training, testing = [], [], []
    for label, (folder, classname) in enumerate(zip(SUN_FOLDERS, SUN_NAMES)):
        for index in range(IMAGES_PER_CLASS):
            relative = f"{folder}/sun_{label}{index:04d}.jpg"
            write_image(os.path.join(dataset, "SUN397", relative))
            rows.append((relative, label, classname, index))
            (testing if part_of(index) == "test" else training).append("/" + relative)
    write_text(os.path.join(dataset, "ClassName.txt"), ["/" + folder for folder in SUN_FOLDERS])
    write_text(os.path.join(dataset, "Training_01.txt"), training)
    write_text(os.path.join(dataset, "Testing_01.txt"), testing)
    write_split(os.path.join(dataset, "split_zhou_SUN397.json"), rows)
    return dataset


WNIDS = ("n01440764", "n01443537", "n01484850")
IMAGENET_NAMES = ("tench", "goldfish", "great white shark")
CLASSNAMES_LINES = [f"{wnid} {name}" for wnid, name in zip(WNIDS, IMAGENET_NAMES)]


def _wnid_folders(image_dir, folders, count, extension=".JPEG"):
    for folder in folders:
        for index in range(count):
            write_image(os.path.join(image_dir, folder, f"{folder}_{index}{extension}"))


def make_imagenet(root):
    dataset = os.path.join(root, "imagenet")
    _wnid_folders(os.path.join(dataset, "images", "train"), WNIDS, IMAGES_PER_CLASS)
    _wnid_folders(os.path.join(dataset, "images", "val"), WNIDS, 3)
    write_text(os.path.join(dataset, "classnames.txt"), CLASSNAMES_LINES)
    return dataset


def make_imagenetv2(root):
    dataset = os.path.join(root, "imagenetv2")
    _wnid_folders(os.path.join(dataset, "imagenetv2-matched-frequency-format-val"),
                  [str(label) for label in range(len(WNIDS))], 2, ".jpeg")
    write_text(os.path.join(dataset, "classnames.txt"), CLASSNAMES_LINES)
    return dataset


def make_imagenet_sketch(root):
    dataset = os.path.join(root, "imagenet-sketch")
    _wnid_folders(os.path.join(dataset, "images"), WNIDS, 2)
    write_text(os.path.join(dataset, "classnames.txt"), CLASSNAMES_LINES)
    return dataset


def _imagenet_subset(root, dataset_dir, image_dir):
    """ImageNet-A/R: a subset of the wnids (2 of 3 here), plus a README.txt that is not a class."""
    dataset = os.path.join(root, dataset_dir)
    _wnid_folders(os.path.join(dataset, image_dir), WNIDS[1:], 2, ".jpg")
    write_text(os.path.join(dataset, image_dir, "README.txt"), ["not a class"])
    write_text(os.path.join(dataset, "classnames.txt"), CLASSNAMES_LINES)
    return dataset


def make_imagenet_a(root):
    return _imagenet_subset(root, "imagenet-adversarial", "imagenet-a")


def make_imagenet_r(root):
    return _imagenet_subset(root, "imagenet-rendition", "imagenet-r")


@dataclass(frozen=True)
class Fake:
    build: object
    classnames: tuple


FAKES = {
    "Caltech101": Fake(make_caltech101, CALTECH_NAMES),
    "DescribableTextures": Fake(make_dtd, DTD_NAMES),
    "Food101": Fake(make_food101, FOOD_NAMES),
    "EuroSAT": Fake(make_eurosat, EUROSAT_NAMES),
    "UCF101": Fake(make_ucf101, UCF_NAMES),
    "OxfordPets": Fake(make_oxford_pets, PET_NAMES),
    "StanfordCars": Fake(make_stanford_cars, CAR_NAMES),
    "OxfordFlowers": Fake(make_oxford_flowers, FLOWER_NAMES),
    "FGVCAircraft": Fake(make_fgvc_aircraft, AIRCRAFT_NAMES),
    "SUN397": Fake(make_sun397, SUN_NAMES),
    "ImageNet": Fake(make_imagenet, IMAGENET_NAMES),
    "ImageNetV2": Fake(make_imagenetv2, IMAGENET_NAMES),
    "ImageNetSketch": Fake(make_imagenet_sketch, IMAGENET_NAMES),
    "ImageNetA": Fake(make_imagenet_a, IMAGENET_NAMES[1:]),
    "ImageNetR": Fake(make_imagenet_r, IMAGENET_NAMES[1:]),
}


def make_all(root):
    """Every fake benchmark under ``root``; returns ``root``."""
    for fake in FAKES.values():
        fake.build(root)
    return root


def make_image_folder(root, folder="my_set", classes=("red_panda", "tabby_cat", "zebra"), count=IMAGES_PER_CLASS):
    """A user folder ``root/folder/<class>/<images>``."""
    for name in classes:
        for index in range(count):
            write_image(os.path.join(root, folder, name, f"img_{index}.png"))
    return os.path.join(root, folder)


def dataset_cfg(root, name, num_shots=-1, subsample="all", seed=1, folder=""):
    """The few config keys a dataset reads, on the real default tree (with dataset extensions)."""
    from dassl.config import apply_cfg_extensions, get_cfg_default

    cfg = apply_cfg_extensions(get_cfg_default())
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = num_shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    if folder:
        cfg.DATASET.FOLDER = folder
    return cfg
