"""A library of real photos available offline, with their sources and licences (read-only, nothing
downloaded).

Three sources, each optional (absent ones are skipped; :func:`photos` raises :class:`MissingDependency` with
the install commands when fewer than ``minimum`` photos are found):

- scikit-learn's ``load_sample_images`` (``china.jpg``, ``flower.jpg``; CC-BY, see scikit-learn's
  ``datasets/images/README.txt``).
- scikit-image's bundled ``skimage.data`` images (``pip install scikit-image``); the licence of each is stated
  in the docstring of its loader in ``skimage/data/_fetchers.py`` (quoted in :data:`SKIMAGE`).
- OpenCV's sample photos from the Debian package ``opencv-doc`` (``apt-get install opencv-doc``), directory
  :data:`OPENCV_DIR`; Debian's ``/usr/share/doc/opencv-doc/copyright`` covers them by ``Files: *``
  (``Apache-2.0 AND BSD-3-Clause``, OpenCV contributors) and excludes Lena from the package. Drawings, logos,
  charts, calibration chessboards and near-duplicate views (stereo/sequence partners) are left out.

Grayscale photos are replicated to three channels; an alpha channel is dropped. Every image is ``uint8``,
``(H, W, 3)``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ._base import MissingDependency

__all__ = ["photos", "SKIMAGE", "OPENCV", "OPENCV_DIR"]

#: scikit-image loaders (``skimage.data.NAME``) that are photographs, with the licence their docstring states.
SKIMAGE = {
    "astronaut": "public domain (NASA)",
    "camera": "CC0 (Lav Varshney)",
    "chelsea": "CC0 (Stefan van der Walt)",
    "coffee": "CC0 (Rachel Michetti)",
    "coins": "no known copyright restrictions (Brooklyn Museum)",
    "hubble_deep_field": "public domain (NASA)",
    "immunohistochemistry": "no known copyright restrictions",
    "retina": "CC0 (Wikimedia Commons, Fundus_photograph_of_normal_left_eye.jpg)",
    "rocket": "public domain (SpaceX)",
    "grass": "CC0 (CC0Textures)",
    "gravel": "CC0 (CC0Textures)",
    "brick": "CC0 (CC0Textures)",
    "cell": "CC0",
    "microaneurysms": "CC0 (Andreas Maier)",
    "clock": "public domain (Stefan van der Walt)",
    "text": "public domain",
    "stereo_motorcycle": "Middlebury stereo data set (Scharstein et al., GCPR 2014); left view only",
}

#: OpenCV ``samples/data`` photographs shipped by Debian's ``opencv-doc``.
OPENCV = ("aero1.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "basketball1.png", "board.jpg",
          "box_in_scene.png", "building.jpg", "butterfly.jpg", "chicky_512.png", "fruits.jpg", "graf1.png",
          "HappyFish.jpg", "home.jpg", "leuvenA.jpg", "messi5.jpg", "orange.jpg", "rubberwhale1.png",
          "smarties.png", "squirrel_cls.jpg", "stuff.jpg")

#: Where Debian's ``opencv-doc`` installs OpenCV's ``samples/data``.
OPENCV_DIR = Path("/usr/share/doc/opencv-doc/examples/data")

_INSTALL = "pip install pillow scikit-image; apt-get install opencv-doc"


def _rgb(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.uint8:  # skimage float images in [0, 1]
        a = np.clip(np.round(np.asarray(a, np.float64) * 255.0), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3])


@functools.lru_cache(maxsize=1)
def _all() -> tuple:
    out = []
    try:
        from sklearn.datasets import load_sample_images

        s = load_sample_images()
        out += [(f"sklearn:{Path(f).name}", _rgb(im)) for f, im in zip(s.filenames, s.images, strict=True)]
    except ImportError:
        pass
    try:
        import skimage.data as skd

        for name in SKIMAGE:
            im = getattr(skd, name)()
            out.append((f"skimage:{name}", _rgb(im[0] if name == "stereo_motorcycle" else im)))
    except ImportError:
        pass
    try:
        from PIL import Image

        for name in OPENCV:
            p = OPENCV_DIR / name
            if p.is_file():
                with Image.open(p) as im:
                    out.append((f"opencv:{name}", _rgb(np.asarray(im.convert("RGB")))))
    except ImportError:
        pass
    return tuple(out)


def photos(minimum: int = 30) -> list[tuple[str, np.ndarray]]:
    """All photos found, as ``(source:name, uint8 array (H, W, 3))`` in a fixed order (scikit-learn,
    scikit-image, OpenCV; each in the order of this module's tables).

    Raises
    ------
    MissingDependency
        Fewer than ``minimum`` photos are installed (the message gives the install commands).
    """
    out = list(_all())
    if len(out) < minimum:
        raise MissingDependency(f"{len(out)} real photos found, {minimum} needed ({_INSTALL})")
    return out
