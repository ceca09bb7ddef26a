"""Reading the plain-text annotation files datasets ship (one entry a line)."""


def read_text_lines(path):
    """The stripped, non-empty lines of an annotation file."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def read_classnames(text_file):
    """``{folder: class name}`` from "folder class name words" lines (ImageNet's classnames.txt format)."""
    classnames = {}
    for line in read_text_lines(text_file):
        folder, _, classname = line.partition(" ")
        classnames[folder] = classname.strip()
    return classnames
