"""Tests for trainables.data and its sources (trainables.datasets): splits, torchvision on-disk
formats, npz input, augmentation, batching.

The torchvision tests build tiny copies of the datasets in torchvision's exact on-disk layout
and let the real torchvision classes read them; nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import pickle
import socket
import struct
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torchvision import datasets as tv_datasets

from trainables.data import (
    DATA_ENV_VAR,
    DATASETS,
    DataConfig,
    DataError,
    DataInfo,
    augment_batch,
    check_available,
    iterate_batches,
    load_splits,
    resolve_data_config,
)

# --------------------------------------------------------------------------------------------
# digits


@pytest.fixture(scope="module")
def digits_raw() -> Any:
    return load_splits({"name": "digits", "normalize": False})


def _row_set(x: torch.Tensor) -> set[bytes]:
    # Digits pixels are counts 0..16 scaled to [0, 1]; x16 makes them exact small integers.
    rows = (x.reshape(len(x), -1) * 16).round().to(torch.uint8).numpy()
    return {row.tobytes() for row in rows}


def test_digits_shapes_classes_and_split_sizes(digits_raw: Any) -> None:
    s = digits_raw
    n_pool = 1797 - 360  # fixed stratified 20 % test split: ceil(0.2 * 1797) = 360
    assert s.info == DataInfo("digits", (1, 8, 8), 10, n_pool - round(0.1 * n_pool), round(0.1 * n_pool), 360)
    assert s.info.class_names == tuple("0123456789") and "counts 0..16 divided by 16" in s.info.natural_units
    assert s.x_train.shape == (s.info.n_train, 1, 8, 8) and s.x_train.dtype == torch.float32
    assert s.x_val.shape == (144, 1, 8, 8) and s.x_test.shape == (360, 1, 8, 8)
    assert s.y_train.dtype == torch.int64
    for y in (s.y_train, s.y_val, s.y_test):
        assert set(y.tolist()) == set(range(10))
    # Stratified test split: every class holds 18 % to 22 % of it (the data is ~10 % per class).
    counts = torch.bincount(s.y_test, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38
    assert 0.0 <= float(s.x_train.min()) and float(s.x_train.max()) <= 1.0
    assert s.augment is False  # digits are never cropped or flipped, whatever the config says


def test_digits_splits_are_disjoint_and_cover_the_dataset(digits_raw: Any) -> None:
    train, val, test = (_row_set(x) for x in (digits_raw.x_train, digits_raw.x_val, digits_raw.x_test))
    assert len(train) == len(digits_raw.x_train) and len(val) == 144 and len(test) == 360
    assert not train & val and not train & test and not val & test
    assert len(train | val | test) == 1797  # the digits data has no duplicate rows


def test_digits_split_seed_controls_validation_only(digits_raw: Any) -> None:
    again = load_splits({"name": "digits", "normalize": False, "split_seed": 0})
    other = load_splits({"name": "digits", "normalize": False, "split_seed": 1})
    assert torch.equal(again.x_val, digits_raw.x_val) and torch.equal(again.y_train, digits_raw.y_train)
    assert _row_set(other.x_val) != _row_set(digits_raw.x_val)
    assert torch.equal(other.x_test, digits_raw.x_test)  # test split is fixed, independent of split_seed


def test_digits_train_subset_keeps_validation(digits_raw: Any) -> None:
    small = load_splits({"name": "digits", "normalize": False, "train_subset": 100})
    assert small.info.n_train == 100 and len(small.x_train) == 100
    assert torch.equal(small.x_val, digits_raw.x_val)
    assert _row_set(small.x_train) <= _row_set(digits_raw.x_train)


def test_normalize_uses_training_statistics_for_every_split(digits_raw: Any) -> None:
    s = load_splits({"name": "digits"})
    assert s.mean is not None and s.std is not None
    torch.testing.assert_close(s.x_train.mean(dim=(0, 2, 3)), torch.zeros(1), atol=1e-5, rtol=0)
    torch.testing.assert_close(s.x_train.std(dim=(0, 2, 3), correction=0), torch.ones(1), atol=1e-5, rtol=0)
    for normed, raw in ((s.x_val, digits_raw.x_val), (s.x_test, digits_raw.x_test)):
        torch.testing.assert_close(normed * s.std[:, None, None] + s.mean[:, None, None], raw, atol=1e-5, rtol=0)
    expected_mean = digits_raw.x_train.mean()
    torch.testing.assert_close(s.mean, expected_mean.reshape(1), atol=1e-6, rtol=0)


def test_check_available_matches_load_splits_for_digits(digits_raw: Any) -> None:
    assert check_available({"name": "digits"}) == digits_raw.info


def test_digits28_is_a_fixed_set_of_distinct_28x28_images() -> None:
    from trainables.data import DIGITS28_SIZES
    from trainables.datasets.digits import load_digits28

    a, b = load_digits28(), load_digits28()
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test), "the same pixels on every run"
    assert a.x_train.dtype == torch.uint8 and tuple(a.x_train.shape[1:]) == (1, 28, 28)
    assert (len(a.x_train), len(a.x_test)) == DIGITS28_SIZES
    assert set(a.y_train.tolist()) == set(a.y_test.tolist()) == set(range(10))
    splits = load_splits({"name": "digits28", "val_fraction": 0.2, "normalize": False})
    assert splits.info.input_shape == (1, 28, 28) and splits.info.n_test == DIGITS28_SIZES[1]
    assert 0.0 <= float(splits.x_train.min()) and float(splits.x_train.max()) <= 1.0
    # Distorted, not resized: no two samples of the training pool are the same image.
    assert len({row.tobytes() for row in a.x_train.flatten(1).numpy()}) == len(a.x_train)


def test_config_validation() -> None:
    # The DataConfig model names the offending key and, for a bad name, the allowed ones.
    with pytest.raises(ValueError, match=r"val_frac\n\s+Extra inputs are not permitted"):  # an unknown key
        load_splits({"name": "digits", "val_frac": 0.2})
    with pytest.raises(ValueError, match=r"name\n\s+Input should be 'digits', 'digits28', 'fashion_mnist', 'cifar10', 'cifar100' or 'npz'"):
        check_available({"name": "mnist"})
    with pytest.raises(ValueError, match="val_fraction"):
        check_available({"name": "digits", "val_fraction": 1.0})
    assert set(resolve_data_config({}).model_dump()) == set(DataConfig().model_dump()) and "npz" in DATASETS


# --------------------------------------------------------------------------------------------
# CIFAR-100 in torchvision's exact on-disk format


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _write_cifar100(root: Path) -> dict[str, Any]:
    """Write ``root/cifar-100-python/{train,test,meta}`` as the official archive extracts them."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    # Distinct fine labels per sample, so each loaded sample can be traced back to its row.
    parts = {
        "train": (rng.integers(0, 256, (10, 3072), dtype=np.uint8), [3, 97, 14, 0, 55, 21, 8, 60, 42, 99]),
        "test": (rng.integers(0, 256, (4, 3072), dtype=np.uint8), [5, 77, 12, 31]),
    }
    for split, (data, fine) in parts.items():
        entry = {
            "filenames": [f"img_{i}.png" for i in range(len(data))],
            "batch_label": f"{split} batch",
            "fine_labels": fine,
            "coarse_labels": [label // 5 for label in fine],
            "data": data,  # rows are 1024 red, 1024 green, 1024 blue values, each row-major 32 x 32
        }
        (folder / split).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {
        "fine_label_names": [f"fine_{i}" for i in range(100)],
        "coarse_label_names": [f"coarse_{i}" for i in range(20)],
    }
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {"folder": folder, **parts}


@pytest.fixture()
def cifar100_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, Any]]:
    written = _write_cifar100(tmp_path)
    folder = written["folder"]
    # torchvision verifies the md5 of the official files. Our files are tiny stand-ins, so the
    # expected checksums become theirs; the real CIFAR100 class still runs every check and read.
    cls = tv_datasets.CIFAR100
    monkeypatch.setattr(cls, "train_list", [["train", _md5(folder / "train")]])
    monkeypatch.setattr(cls, "test_list", [["test", _md5(folder / "test")]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": _md5(folder / "meta")})
    return tmp_path, written


def test_cifar100_on_disk_format_loads_with_right_layout(cifar100_root: tuple[Path, dict[str, Any]]) -> None:
    root, written = cifar100_root
    cfg = {"name": "cifar100", "root": str(root), "download": False, "val_fraction": 0.2}
    s = load_splits(cfg)
    assert s.info == DataInfo("cifar100", (3, 32, 32), 100, 8, 2, 4)
    assert s.x_train.shape == (8, 3, 32, 32) and s.x_test.shape == (4, 3, 32, 32)
    assert s.x_train.dtype == torch.float32 and s.y_train.dtype == torch.int64
    assert s.augment is True
    assert sorted(s.y_train.tolist() + s.y_val.tolist()) == sorted(written["train"][1])
    assert s.y_test.tolist() == written["test"][1]
    assert s.mean is not None and s.std is not None and s.mean.shape == (3,)

    for x, y, (data, labels) in (
        (torch.cat([s.x_train, s.x_val]), torch.cat([s.y_train, s.y_val]), written["train"]),
        (s.x_test, s.y_test, written["test"]),
    ):
        pixels = (x * s.std[:, None, None] + s.mean[:, None, None]) * 255
        for k, label in enumerate(y.tolist()):
            row = data[labels.index(label)]
            expected = torch.from_numpy(row.reshape(3, 32, 32).astype(np.float32))
            torch.testing.assert_close(pixels[k], expected, atol=1e-3, rtol=0)
            # Green channel, row 5, column 7 sits at 1024 + 5 * 32 + 7 of the CIFAR row.
            assert abs(float(pixels[k, 1, 5, 7]) - int(row[1024 + 5 * 32 + 7])) < 1e-3

    assert check_available(cfg) == s.info


def test_cifar100_root_from_environment_variable(
    cifar100_root: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = cifar100_root
    monkeypatch.setenv(DATA_ENV_VAR, str(root))
    info = check_available({"name": "cifar100", "download": False, "val_fraction": 0.2})
    assert (info.n_train, info.n_val, info.n_test) == (8, 2, 4)
    assert resolve_data_config({"name": "cifar100"}).root == str(root.absolute())


def test_cifar100_checksum_mismatch_is_a_data_error(tmp_path: Path) -> None:
    # Same files, torchvision's real checksums: its integrity check must reject them.
    _write_cifar100(tmp_path)
    with pytest.raises(DataError) as info:
        load_splits({"name": "cifar100", "root": str(tmp_path), "download": False})
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "cifar-100-python") in message and "could not be read" in message


def test_cifar100_partial_folder_names_missing_file(cifar100_root: tuple[Path, dict[str, Any]]) -> None:
    root, written = cifar100_root
    (written["folder"] / "meta").unlink()
    with pytest.raises(DataError, match=r"CIFAR-100 incomplete under .*\(missing meta\)"):
        check_available({"name": "cifar100", "root": str(root), "download": False})


# --------------------------------------------------------------------------------------------
# Fashion-MNIST in its raw idx format


def _write_idx(path: Path, array: np.ndarray) -> None:
    # idx format: magic = 0x08 (unsigned byte) << 8 | number of dims, then big-endian dims.
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_raw_format_loads(tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(3)
    train_x, test_x = rng.integers(0, 256, (10, 28, 28)), rng.integers(0, 256, (3, 28, 28))
    train_y, test_y = np.arange(10), np.array([9, 0, 4])
    _write_idx(raw / "train-images-idx3-ubyte", train_x)
    _write_idx(raw / "train-labels-idx1-ubyte", train_y)
    _write_idx(raw / "t10k-images-idx3-ubyte", test_x)
    _write_idx(raw / "t10k-labels-idx1-ubyte", test_y)

    s = load_splits({"name": "fashion_mnist", "root": str(tmp_path), "download": False, "normalize": False})
    assert s.info == DataInfo("fashion_mnist", (1, 28, 28), 10, 9, 1, 3)
    assert s.augment is False  # augment is on in the defaults, but not for this dataset
    assert s.y_test.tolist() == [9, 0, 4]
    torch.testing.assert_close(s.x_test[:, 0] * 255, torch.from_numpy(test_x).float())
    for k, label in enumerate(s.y_train.tolist()):  # label == row index in this fixture
        torch.testing.assert_close(s.x_train[k, 0] * 255, torch.from_numpy(train_x[label]).float())


# --------------------------------------------------------------------------------------------
# Missing data and no network


def test_missing_cifar10_without_download_names_expected_path(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        check_available({"name": "cifar10", "root": str(tmp_path), "download": False})
    message = str(info.value)
    assert message.startswith(f"CIFAR-10 not found under {tmp_path / 'cifar-10-batches-py'}")
    assert "data.download is false" in message and f"${DATA_ENV_VAR}" in message and "\n" not in message
    assert not (tmp_path / "cifar-10-batches-py").exists()  # nothing attempted, nothing written


def test_missing_cifar10_offline_download_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    timeouts: list[float | None] = []

    def offline(*args: Any, **kwargs: Any) -> Any:
        timeouts.append(socket.getdefaulttimeout())
        raise urllib.error.URLError("network is unreachable (test)")

    # The real torchvision download path runs; only the socket layer it reaches is replaced.
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    before = socket.getdefaulttimeout()
    with pytest.raises(DataError) as info:
        load_splits({"name": "cifar10", "root": str(tmp_path / "data"), "download": True})
    message = str(info.value)
    assert message.startswith(f"CIFAR-10 not found under {tmp_path / 'data' / 'cifar-10-batches-py'}")
    assert "could not be downloaded (URLError: network is unreachable (test))" in message
    assert "copy the extracted 'cifar-10-batches-py/' folder into" in message and "\n" not in message
    assert timeouts and timeouts[0] is not None and 0 < timeouts[0] <= 30  # the download was bounded
    assert socket.getdefaulttimeout() == before  # and the global timeout restored


# --------------------------------------------------------------------------------------------
# npz


def _npz(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


def _npz_cfg(path: Path, **extra: Any) -> dict[str, Any]:
    # Config values are plain strings (a config is JSON): paths go in as str.
    return {"name": "npz", "path": str(path), "normalize": False, "val_fraction": 0.25, **extra}


def test_npz_channels_last_uint8_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (8, 5, 6, 3), dtype=np.uint8)  # N x H x W x C
    x_test = rng.integers(0, 256, (2, 5, 6, 3), dtype=np.uint8)
    # Labels double as row ids so each loaded sample can be traced back.
    path = _npz(tmp_path / "d.npz", x_train=x_train, y_train=np.arange(8), x_test=x_test, y_test=np.array([1, 0]))
    s = load_splits(_npz_cfg(path))
    assert s.info == DataInfo("npz", (3, 5, 6), 8, 6, 2, 2)
    assert s.augment is False
    for x, y, source in ((s.x_train, s.y_train, x_train), (s.x_val, s.y_val, x_train)):
        for k, row in enumerate(y.tolist()):
            expected = torch.from_numpy(source[row]).permute(2, 0, 1).float() / 255
            torch.testing.assert_close(x[k], expected)
    torch.testing.assert_close(s.x_test, torch.from_numpy(x_test).permute(0, 3, 1, 2).float() / 255)


def test_npz_vectors_grey_and_channels_first(tmp_path: Path) -> None:
    vectors = np.linspace(-3, 3, 8 * 7, dtype=np.float64).reshape(8, 7)
    path = _npz(tmp_path / "v.npz", x_train=vectors, y_train=np.arange(8), x_test=vectors[:3], y_test=np.arange(3))
    s = load_splits(_npz_cfg(path))
    assert s.info.input_shape == (1, 1, 7) and s.x_train.dtype == torch.float32
    torch.testing.assert_close(s.x_test[:, 0, 0, :], torch.from_numpy(vectors[:3]).float())  # floats not rescaled

    grey = np.zeros((8, 4, 4), dtype=np.float32)
    path = _npz(tmp_path / "g.npz", x_train=grey, y_train=np.arange(8), x_test=grey[:2], y_test=np.arange(2))
    assert check_available(_npz_cfg(path)).input_shape == (1, 4, 4)

    chw = np.zeros((8, 2, 4, 5), dtype=np.float32)
    labels = np.arange(8, dtype=np.float32)  # integral float labels are accepted
    path = _npz(tmp_path / "c.npz", x_train=chw, y_train=labels, x_test=chw[:2], y_test=np.array([0.0, 1.0]))
    info = check_available(_npz_cfg(path))
    assert info.input_shape == (2, 4, 5) and info.num_classes == 8


@pytest.mark.parametrize(
    ("arrays", "pattern"),
    [
        ({"x_train": np.zeros((4, 3)), "y_train": np.arange(4), "x_test": np.zeros((2, 3))}, "missing array.*y_test"),
        (
            {"x_train": np.zeros((4, 3)), "y_train": np.arange(3), "x_test": np.zeros((2, 3)), "y_test": np.arange(2)},
            "x_train has 4 samples but y_train has 3 labels",
        ),
        (
            {"x_train": np.zeros((4, 3)), "y_train": np.array([0, 1, 0.5, 1]), "x_test": np.zeros((2, 3)),
             "y_test": np.arange(2)},
            "y_train must hold integer class labels.*0.5",
        ),
        (
            {"x_train": np.zeros((4, 3)), "y_train": np.arange(4), "x_test": np.zeros((2, 5)), "y_test": np.arange(2)},
            "x_train samples have shape",
        ),
    ],
    ids=["missing-key", "length-mismatch", "non-integer-labels", "shape-mismatch"],
)
def test_bad_npz_is_a_data_error_naming_the_problem(tmp_path: Path, arrays: dict[str, Any], pattern: str) -> None:
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=pattern) as info:
        check_available(_npz_cfg(path))
    assert str(info.value).startswith(str(path))


def test_npz_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"{tmp_path / 'none.npz'}: file not found"):
        load_splits(_npz_cfg(tmp_path / "none.npz"))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not an archive")
    with pytest.raises(DataError, match="not a readable .npz archive"):
        load_splits(_npz_cfg(garbage))
    # A missing path is now caught by the DataConfig model, before any loading.
    with pytest.raises(ValueError, match="data.name 'npz' needs data.path"):
        load_splits({"name": "npz"})


def test_validation_split_must_leave_a_sample_each_side(tmp_path: Path) -> None:
    path = _npz(tmp_path / "tiny.npz", x_train=np.zeros((2, 3)), y_train=np.arange(2), x_test=np.zeros((1, 3)),
                y_test=np.arange(1))
    with pytest.raises(DataError, match="both need at least 1"):
        check_available({"name": "npz", "path": str(path), "val_fraction": 0.1})  # round(0.2) = 0 validation samples


# --------------------------------------------------------------------------------------------
# augment_batch


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_augment_batch_shape_and_determinism() -> None:
    x = torch.rand(16, 3, 8, 8, generator=_seeded(0))
    out = augment_batch(x, _seeded(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, augment_batch(x, _seeded(1)))
    assert not torch.equal(out, augment_batch(x, _seeded(2)))
    with pytest.raises(ValueError):
        augment_batch(x[0], _seeded(1))


def test_augment_batch_outputs_are_padded_crops_or_their_flips() -> None:
    image = torch.rand(3, 8, 8, generator=_seeded(0)) + 1.0  # distinct values, none equal to the zero padding
    padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
    crops = [padded[:, dy : dy + 8, dx : dx + 8] for dy in range(9) for dx in range(9)]
    out = augment_batch(image.expand(64, 3, 8, 8), _seeded(5))
    flipped = 0
    for sample in out:
        plain = any(torch.equal(sample, crop) for crop in crops)
        mirrored = any(torch.equal(sample, crop.flip(-1)) for crop in crops)
        assert plain != mirrored  # exactly one: a crop, or the horizontal flip of a crop
        flipped += mirrored
    assert 0 < flipped < 64  # p = 1/2 each: all-or-nothing would have odds 2^-63


def test_augment_batch_keeps_values_of_each_sample_or_zero() -> None:
    n = 32
    # Sample i takes values in [i + 0.5, i + 1): any mixing between samples would show.
    x = torch.rand(n, 3, 8, 8, generator=_seeded(0)) * 0.5 + torch.arange(n).float()[:, None, None, None] + 0.5
    out = augment_batch(x, _seeded(3))
    for i in range(n):
        values = out[i][out[i] != 0]
        assert bool(((values >= i + 0.5) & (values < i + 1.0)).all())
        assert set(values.tolist()) <= set(x[i].flatten().tolist())
    assert bool((out == 0).any())  # with 32 samples, some crop is off-centre and shows padding


# --------------------------------------------------------------------------------------------
# iterate_batches


def test_iterate_batches_covers_each_sample_once_and_keeps_last_partial_batch() -> None:
    n = 23
    x = torch.arange(n, dtype=torch.float32)[:, None, None, None].expand(n, 1, 2, 2).clone()
    y = torch.arange(n)
    batches = list(iterate_batches(x, y, 5, shuffle=True, generator=_seeded(0)))
    assert [len(yb) for _, yb in batches] == [5, 5, 5, 5, 3]
    order = torch.cat([yb for _, yb in batches])
    assert sorted(order.tolist()) == list(range(n)) and order.tolist() != list(range(n))
    for xb, yb in batches:  # inputs stay paired with their labels
        assert torch.equal(xb[:, 0, 0, 0], yb.float())
    again = torch.cat([yb for _, yb in iterate_batches(x, y, 5, shuffle=True, generator=_seeded(0))])
    assert torch.equal(order, again)

    plain = torch.cat([yb for _, yb in iterate_batches(x, y, 4, shuffle=False)])
    assert plain.tolist() == list(range(n))
    with pytest.raises(ValueError):
        next(iterate_batches(x, y, 0, shuffle=False))


def test_iterate_batches_augments_when_asked() -> None:
    x = torch.rand(10, 3, 8, 8, generator=_seeded(0)) + 1.0
    y = torch.arange(10)
    batches = list(iterate_batches(x, y, 4, shuffle=False, generator=_seeded(1), augment=True))
    out = torch.cat([xb for xb, _ in batches])
    assert out.shape == x.shape and not torch.equal(out, x)
    assert torch.equal(torch.cat([yb for _, yb in batches]), y)
