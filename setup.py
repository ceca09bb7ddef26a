"""Install the toolkit's importable packages (`clip`, `dassl`).

`trainers/` and `datasets/` are deliberately *not* installed as top-level
packages: they would shadow Hugging Face's `datasets` (and any other
`trainers`) for every program on the machine. `train.py` and the tools import
them from the repository folder they live in.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent

setup(
    name="clip-prompt-toolkit",
    version="0.1.0",
    description="Prompt learning on a frozen CLIP backbone: CoOp, CoCoOp, KgCoOp, DPT, TGP-T, TextRefiner",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["clip", "clip.*", "dassl", "dassl.*"]),
    package_data={"clip": ["*.txt.gz", "pretrained/*", "data/*"], "dassl": ["data/*"]},
    include_package_data=True,
    install_requires=[
        "torch>=2.6",  # CVE-2025-32434: torch.load(weights_only=True) is safe from 2.6 on
        "torchvision>=0.19",
        "numpy",
        "pillow",
        "yacs",
        "tqdm",
        "ftfy",
        "regex",
        "scipy",
        "tabulate",
        "matplotlib",
    ],
    extras_require={
        # open_clip's model zoo (LAION, DataComp, DFN, MetaCLIP backbones); OpenAI's models never need it.
        "open_clip": ["open_clip_torch>=2.20"],
        "test": ["pytest>=7", "open_clip_torch>=2.20", "submitit>=1.5"],
        "tensorboard": ["tensorboard"],
        "slurm": ["submitit>=1.5"],
    },
)
