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

A second, separate set, :func:`wallpaper_photos`, holds photographs from Debian's desktop wallpaper packages.
They are unlabelled calibration data only (never evaluated; :func:`photos` and the library's 30/10 split do
not include them), so that every number measured on the library's evaluation photos stays comparable:

- ``lomiri-wallpapers-16.04`` and ``lomiri-wallpapers-20.04`` (directory :data:`LOMIRI_DIR`), licences per
  file in Debian's ``/usr/share/doc/lomiri-wallpapers-16.04/copyright`` (quoted in :data:`LOMIRI`).
- ``plasma-workspace-wallpapers`` (directory :data:`PLASMA_DIR`): licence and author per photo from each
  folder's ``metadata.json`` (quoted in :data:`PLASMA`: LGPL-3.0, one CC-BY-SA-4.0); Debian's
  ``/usr/share/doc/plasma-workspace-wallpapers/copyright`` covers the package by ``Files: *`` (GPL-2+).

Only photographs were taken (drawings, renders and gradients left out, judged by eye on 2026-12-02); each is
read at its largest file and reduced to a longer side of at most :data:`WALLPAPER_MAX_SIDE` pixels (PIL's
``thumbnail``, antialiased), which keeps a 5120 x 2880 file at 1.8 MB in memory (1024 x 576), its shorter
side still 2.6x the 224-pixel crops taken from it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ._base import MissingDependency

__all__ = ["photos", "wallpaper_photos", "SKIMAGE", "OPENCV", "OPENCV_DIR", "LOMIRI", "LOMIRI_DIR",
           "PLASMA", "PLASMA_DIR", "WALLPAPER_MAX_SIDE"]

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

#: Photographs of Debian's ``lomiri-wallpapers-16.04`` / ``-20.04``, with the licence of each in Debian's
#: copyright file.
LOMIRI = {
    "Bridge_by_Sander_Klootwijk.jpg": "CC-BY-SA-4.0 (Sander Klootwijk, 2018)",
    "Dragonfly_by_Bolly.jpg": "CC-BY-SA-4.0 (Bolly, 2018)",
    "Kleiber_by_Lukas_Baubkus.jpg": "CC-BY-SA-3.0 (Lukas Baubkus, 2021; lomiri-wallpapers-20.04)",
    "Picture_0B_by_freespace.jpg": "CC-BY-4.0 (Trevor Freespace, 2018)",
    "Picture_1A_by_freespace.jpg": "CC-BY-4.0 (Trevor Freespace, 2018)",
    "Wine_by_Jakkub_Mede.jpg": "CC-BY-4.0 (Jakub Mede, 2018)",
    "aitzgorri_by_Aitzol_Berasategi.jpg": "CC-BY-4.0 (Aitzol Berasategi, 2018)",
    "analogpattern_by_Peter_Nerlich.jpg": "CC-BY-SA-4.0 (Peter Nerlich, 2018)",
    "free_by_Peter_Nerlich.jpg": "CC-BY-SA-4.0 (Peter Nerlich, 2018)",
    "friends_by_Aitzol_Berasategi.jpg": "CC-BY-4.0 (Aitzol Berasategi, 2018)",
    "greentock_by_Peter_Nerlich.jpg": "CC-BY-SA-4.0 (Peter Nerlich, 2018)",
    "life_by_Aitzol_Berasategi.jpg": "CC-BY-4.0 (Aitzol Berasategi, 2018)",
    "picosdeeuropa_by_Aitzol_Berasategi.jpg": "CC-BY-4.0 (Aitzol Berasategi, 2018)",
    "seeding_by_Clements_Engelhardt.jpg": "CC0-1.0 (Clemens Engelhardt, 2018)",
    "sunset_by_Aitzol_Berasategi.jpg": "CC-BY-4.0 (Aitzol Berasategi, 2018)",
}

#: Where the lomiri wallpaper packages install their images.
LOMIRI_DIR = Path("/usr/share/backgrounds")

#: Photographs of Debian's ``plasma-workspace-wallpapers`` (folder names), with the licence and author each
#: folder's ``metadata.json`` states (Debian's copyright file says GPL-2+ for ``Files: *``, KDE Visual Design
#: Group).
PLASMA = {
    "BytheWater": "LGPL-3.0 (Maciej Wiklo)",
    "ColdRipple": "LGPL-3.0 (Risto Saukonpää)",
    "ColorfulCups": "LGPL-3.0 (Dmitri Popov)",
    "DarkestHour": "LGPL-3.0 (Risto Saukonpää)",
    "EveningGlow": "LGPL-3.0 (Ian Hex)",
    "FallenLeaf": "LGPL-3.0 (Martin Klapetek)",
    "Grey": "LGPL-3.0 (Sigi Sagi)",
    "Kite": "LGPL-3.0 (Risto Saukonpää)",
    "OneStandsOut": "LGPL-3.0 (Risto Saukonpää)",
    "Path": "LGPL-3.0 (Risto Saukonpää)",
    "Volna": "CC-BY-SA-4.0 (Nikita Babin)",
    "summer_1am": "LGPL-3.0 (Risto Saukonpää)",
}

#: Where ``plasma-workspace-wallpapers`` installs them (``NAME/contents/images/WxH.jpg``).
PLASMA_DIR = Path("/usr/share/wallpapers")

#: The longer side, in pixels, to which a wallpaper photo is reduced (:func:`wallpaper_photos`).
WALLPAPER_MAX_SIDE = 1024

_INSTALL = "pip install pillow scikit-image; apt-get install opencv-doc"
_WALLPAPER_INSTALL = ("pip install pillow; apt-get install lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 "
                      "plasma-workspace-wallpapers")


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


def _largest(folder: Path) -> Path | None:
    files = [f for f in folder.glob("*") if f.is_file() and not f.is_symlink()]
    return max(files, key=lambda f: (f.stat().st_size, f.name)) if files else None


@functools.lru_cache(maxsize=1)
def _wallpapers() -> tuple:
    try:
        from PIL import Image
    except ImportError:
        return ()
    paths = [(f"lomiri:{n}", LOMIRI_DIR / n) for n in LOMIRI]
    paths += [(f"plasma:{n}", _largest(PLASMA_DIR / n / "contents" / "images")) for n in PLASMA]
    out = []
    for name, p in paths:
        if p is not None and p.is_file():
            with Image.open(p) as im:
                im = im.convert("RGB")
                im.thumbnail((WALLPAPER_MAX_SIDE, WALLPAPER_MAX_SIDE))
                a = _rgb(np.asarray(im))
                a.setflags(write=False)   # cached: a caller's edit must not change the next caller's photo
                out.append((name, a))
    return tuple(out)


def wallpaper_photos(minimum: int = 1) -> list[tuple[str, np.ndarray]]:
    """The wallpaper photographs found (module docstring), as ``(source:name, uint8 array (H, W, 3))`` with
    ``max(H, W) <= WALLPAPER_MAX_SIDE``, in the order of :data:`LOMIRI` then :data:`PLASMA`: unlabelled
    calibration data, disjoint from :func:`photos`. 27 when all three packages are installed. The arrays
    are read-only (cached).

    Raises
    ------
    ValueError
        ``minimum`` not an integer >= 0.
    MissingDependency
        Fewer than ``minimum`` are installed (the message gives the install command).
    """
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise ValueError(f"wallpaper_photos: minimum: expected an integer >= 0, found {minimum!r}")
    out = list(_wallpapers())
    if len(out) < minimum:
        raise MissingDependency(f"{len(out)} wallpaper photos found, {minimum} needed ({_WALLPAPER_INSTALL})")
    return out
