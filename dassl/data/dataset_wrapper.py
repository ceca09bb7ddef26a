"""Turns a list of Datum into the batch dicts the trainers read."""
from torch.utils.data import Dataset
from torchvision.transforms import Compose, Normalize, Resize, ToTensor

from .decoded_images import DecodedImages
from .transforms import INTERPOLATION_MODES


class DatasetWrapper(Dataset):
    """Items are dicts: img (transformed), label, domain, impath, index (+ img0 if RETURN_IMG0).

    `transform` may be a list of transforms (outputs img, img2, ...); with
    DATALOADER.K_TRANSFORMS > 1 in training each is applied K times.
    """

    def __init__(self, cfg, data_source, transform=None, is_train=False):
        self.cfg = cfg
        self.data_source = data_source
        self.transform = transform
        self.is_train = is_train
        self.k_tfm = cfg.DATALOADER.K_TRANSFORMS if is_train else 1
        self.return_img0 = cfg.DATALOADER.RETURN_IMG0
        if self.k_tfm > 1 and transform is None:
            raise ValueError(f"Cannot augment each image {self.k_tfm} times (DATALOADER.K_TRANSFORMS) without a transform")
        plain = [Resize(tuple(cfg.INPUT.SIZE), interpolation=INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]), ToTensor()]
        if "normalize" in cfg.INPUT.TRANSFORMS:
            plain.append(Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD))
        self.to_tensor = Compose(plain)
        self.decoded = DecodedImages(cfg.DATALOADER.DECODED_CACHE_MB)

    def __len__(self):
        return len(self.data_source)

    def __getitem__(self, idx):
        item = self.data_source[idx]
        output = {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx}
        img0 = self.decoded.read(item.impath)
        if self.transform is None:
            output["img"] = self.to_tensor(img0)
        elif isinstance(self.transform, (list, tuple)):
            for i, tfm in enumerate(self.transform):
                output["img" if i == 0 else f"img{i + 1}"] = self._apply(tfm, img0)
        else:
            output["img"] = self._apply(self.transform, img0)
        if self.return_img0:
            output["img0"] = self.to_tensor(img0)
        return output

    def _apply(self, tfm, img0):
        images = [tfm(img0) for _ in range(self.k_tfm)]
        return images[0] if len(images) == 1 else images
