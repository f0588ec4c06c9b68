"""benchmark.data.corruptions: the METHODS.md §9 corruptions are the identity at severity 0, grow with
severity, follow their formulas, are reproducible per sample whatever the batch, stay in [0, 1];
event corruptions are reproducible and monotone; the official MNIST-C / CIFAR-10-C files load."""

from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import torch

from benchmark.contract.errors import ConfigError, MissingData
from benchmark.data.corruptions import CORRUPTIONS, corrupt, load_cifar10_c, load_mnist_c, parameter
from benchmark.data.event_corruptions import EVENT_CORRUPTIONS, corrupt_events

NAMES = list(CORRUPTIONS)
SEED = 7


def textured(batch: int = 4, channels: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Fixed images with both smooth structure and detail, values strictly inside (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0.1, 0.9, size)
    smooth = (ramp.view(1, size) + ramp.view(size, 1)) / 2
    detail = torch.rand(batch, channels, size, size, generator=g)
    return (0.6 * smooth + 0.4 * detail).clamp(0.02, 0.98)


def run(images: torch.Tensor, name: str, severity: int, seed: int = SEED, start: int = 0) -> torch.Tensor:
    return corrupt(images, name, severity, seed, range(start, start + len(images)))


# --- severity 0, range, reproducibility -------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_severity_zero_is_the_identity(name, channels):
    x = textured(channels=channels)
    assert torch.equal(run(x, name, 0), x)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_output_is_float32_in_unit_range_with_the_input_shape(name, channels):
    extremes = torch.stack([torch.zeros(channels, 16, 16), torch.ones(channels, 16, 16),
                            textured(1, channels, 16)[0]])
    for severity in range(1, 6):
        out = run(extremes, name, severity)
        assert out.shape == extremes.shape and out.dtype == torch.float32
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_byte_identical_batches(name):
    x = textured()
    first, second = run(x, name, 3), run(x.clone(), name, 3)
    assert first.numpy().tobytes() == second.numpy().tobytes()


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"])
def test_a_different_seed_gives_different_noise(name):
    x = textured()
    assert not torch.equal(run(x, name, 3, seed=1), run(x, name, 3, seed=2))


@pytest.mark.parametrize("name", NAMES)
def test_a_samples_corruption_does_not_depend_on_batch_size_or_composition(name):
    x = textured(batch=6, channels=3, size=16)
    whole = run(x, name, 4)
    # the same samples in other batches: reversed order, then singletons, then a pair with a stranger
    order = [5, 3, 1, 0, 2, 4]
    shuffled = corrupt(x[order], name, 4, SEED, order)
    assert torch.equal(shuffled, whole[order])
    for i in range(6):
        assert torch.equal(corrupt(x[i:i + 1], name, 4, SEED, [i]), whole[i:i + 1])
    stranger = textured(batch=1, channels=3, size=16, seed=99)
    mixed = corrupt(torch.cat([x[2:3], stranger]), name, 4, SEED, [2, 1000])
    assert torch.equal(mixed[:1], whole[2:3])


def test_affine_direction_varies_between_samples_but_not_between_runs():
    x = textured(batch=16, channels=1, size=16)
    out = run(x, "rotate", 2)
    # the same image at 16 indices: the ±c direction is drawn per sample, so both directions occur
    same = corrupt(x[:1].expand(16, -1, -1, -1).contiguous(), "rotate", 2, SEED, range(16))
    assert len({same[i].numpy().tobytes() for i in range(16)}) == 2
    assert torch.equal(out, run(x, "rotate", 2))


# --- severities are monotone in their parameter -------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
                                  "gaussian_blur", "contrast", "brightness"])
def test_mean_change_from_the_clean_image_grows_with_severity(name, channels):
    x = textured(channels=channels)
    change = [float((run(x, name, s) - x).abs().mean()) for s in range(6)]
    assert change[0] == 0
    assert all(a < b for a, b in zip(change, change[1:])), change


def test_parameters_match_the_methods_table_and_grow_in_harm():
    table = {  # METHODS.md §9
        "gaussian_noise": (.04, .06, .08, .09, .10), "shot_noise": (500, 250, 100, 75, 50),
        "impulse_noise": (.01, .02, .03, .05, .07), "speckle_noise": (.06, .10, .12, .16, .20),
        "gaussian_blur": (.4, .6, .7, .8, 1), "contrast": (.75, .5, .4, .3, .15),
        "brightness": (.05, .1, .15, .2, .3), "pixelate": (.95, .9, .85, .75, .65),
        "rotate": (.2, .4, .6, .8, 1), "shear": (.2, .4, .6, .8, 1), "translate": (1, 2, 3, 4, 5),
    }
    assert set(table) == set(CORRUPTIONS)
    decreasing = {"shot_noise", "contrast", "pixelate"}  # fewer photons, less contrast, coarser
    for name, values in table.items():
        got = [parameter(name, s) for s in range(1, 6)]
        assert got == pytest.approx(list(values))
        steps = [b - a for a, b in zip(got, got[1:])]
        assert all(d < 0 for d in steps) if name in decreasing else all(d > 0 for d in steps)
    families = {c.family for c in CORRUPTIONS.values()}
    assert families == {"noise", "blur", "digital", "affine"}
    assert len({c.id for c in CORRUPTIONS.values()}) == len(CORRUPTIONS)


# --- each corruption does what its formula says -------------------------------------------------


def test_gaussian_noise_adds_noise_of_the_table_sigma():
    x = torch.full((8, 1, 32, 32), 0.5)
    for severity in (1, 5):
        delta = run(x, "gaussian_noise", severity) - x
        assert float(delta.mean()) == pytest.approx(0, abs=0.01)
        assert float(delta.std()) == pytest.approx(parameter("gaussian_noise", severity), rel=0.05)


def test_shot_noise_keeps_the_mean_with_poisson_variance():
    x = torch.full((8, 1, 32, 32), 0.5)
    c = parameter("shot_noise", 5)  # 50 photons per unit: variance x / c
    out = run(x, "shot_noise", 5)
    assert float(out.mean()) == pytest.approx(0.5, abs=0.01)
    assert float(out.var()) == pytest.approx(0.5 / c, rel=0.1)
    # values are multiples of 1/c: counts of photons
    counts = out.double() * c
    assert torch.allclose(counts, counts.round(), atol=1e-4)


def test_impulse_noise_replaces_the_table_fraction_half_with_salt_half_with_pepper():
    x = torch.full((8, 3, 32, 32), 0.5)
    amount = parameter("impulse_noise", 5)
    out = run(x, "impulse_noise", 5)
    salt, pepper = float((out == 1).double().mean()), float((out == 0).double().mean())
    assert salt + pepper == pytest.approx(amount, rel=0.1)
    assert salt == pytest.approx(pepper, rel=0.25)
    assert bool(((out == 0) | (out == 1) | (out == 0.5)).all())


def test_speckle_noise_scales_with_the_pixel_value():
    x = torch.cat([torch.full((4, 1, 32, 32), 0.1), torch.full((4, 1, 32, 32), 0.5)])
    c = parameter("speckle_noise", 5)
    delta = run(x, "speckle_noise", 5) - x
    assert float(delta[:4].std()) == pytest.approx(0.1 * c, rel=0.1)
    assert float(delta[4:].std()) == pytest.approx(0.5 * c, rel=0.1)
    assert torch.equal(run(torch.zeros(2, 1, 8, 8), "speckle_noise", 5), torch.zeros(2, 1, 8, 8))


def test_gaussian_blur_spreads_a_dot_into_the_normalised_gaussian_kernel():
    sigma = parameter("gaussian_blur", 5)
    dot = torch.zeros(1, 1, 21, 21)
    dot[0, 0, 10, 10] = 1.0
    out = run(dot, "gaussian_blur", 5)[0, 0].double()
    radius = math.ceil(4 * sigma)  # truncated at 4σ, as scipy / skimage
    k = torch.tensor([math.exp(-d * d / (2 * sigma**2)) for d in range(-radius, radius + 1)], dtype=torch.float64)
    k /= k.sum()
    expected = torch.zeros(21, 21, dtype=torch.float64)
    expected[10 - radius:11 + radius, 10 - radius:11 + radius] = torch.outer(k, k)
    assert torch.allclose(out, expected, atol=1e-7)


def test_gaussian_blur_keeps_a_constant_image_constant_at_the_borders():
    x = torch.full((1, 3, 8, 8), 0.3)  # reflect padding: no dark border
    assert torch.allclose(run(x, "gaussian_blur", 5), x, atol=1e-7)


@pytest.mark.parametrize("channels", [1, 3])
def test_contrast_pulls_each_channel_to_its_mean(channels):
    x = textured(channels=channels)
    c = parameter("contrast", 3)
    mean = x.double().mean(dim=(2, 3), keepdim=True)
    expected = ((x.double() - mean) * c + mean).float()
    assert torch.equal(run(x, "contrast", 3), expected)


def test_brightness_on_grayscale_adds_and_clips():
    x = textured(channels=1)
    c = parameter("brightness", 5)
    assert torch.equal(run(x, "brightness", 5), (x.double() + c).clamp(0, 1).float())


def test_brightness_on_rgb_raises_the_hsv_value_and_keeps_hue_and_saturation():
    x = textured(batch=1, channels=3, size=6)
    x[0, :, 0, 0] = 0.0  # black: hue/saturation undefined, becomes grey of value c
    x[0, :, 0, 1] = torch.tensor([0.9, 0.5, 0.2])  # V + c > 1: clipped at 1
    c = parameter("brightness", 5)
    out = run(x, "brightness", 5)
    for i in range(6):
        for j in range(6):
            h, s, v = colorsys.rgb_to_hsv(*x[0, :, i, j].tolist())
            expected = colorsys.hsv_to_rgb(h, s, min(v + c, 1.0))
            assert out[0, :, i, j].tolist() == pytest.approx(expected, abs=1e-6)


def test_pixelate_leaves_at_most_the_downsampled_number_of_distinct_values():
    x = textured(batch=1, channels=1, size=32)
    for severity in range(1, 6):
        side = int(32 * parameter("pixelate", severity))  # CIFAR-10-C: int(32 · c)
        out = run(x, "pixelate", severity)
        assert len(torch.unique(out)) <= side * side
        # the area average keeps the mean brightness
        assert float(out.mean()) == pytest.approx(float(x.mean()), abs=0.02)


def test_translate_moves_a_dot_by_the_severity_in_both_axes():
    dot = torch.zeros(1, 1, 16, 16)
    dot[0, 0, 8, 8] = 1.0
    for severity in range(1, 6):
        out = run(dot, "translate", severity)[0, 0]
        where = (out == 1.0).nonzero().tolist()
        assert len(where) == 1 and float(out.sum()) == pytest.approx(1.0)
        (row, col), = where
        assert abs(row - 8) == severity and abs(col - 8) == severity


def _moments(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    h, w = image.shape
    ys = torch.arange(h, dtype=torch.float64).view(h, 1) - (h - 1) / 2
    xs = torch.arange(w, dtype=torch.float64).view(1, w) - (w - 1) / 2
    return image.double(), xs.expand(h, w), ys.expand(h, w)


def test_rotate_turns_a_bar_by_the_severity_angle():
    bar = torch.zeros(1, 1, 32, 32)
    bar[0, 0, 15:17, 6:26] = 1.0  # horizontal bar through the centre
    for severity in range(1, 6):
        m, xs, ys = _moments(run(bar, "rotate", severity)[0, 0])
        mu20, mu02, mu11 = (m * xs * xs).sum(), (m * ys * ys).sum(), (m * xs * ys).sum()
        angle = 0.5 * math.atan2(2 * float(mu11), float(mu20 - mu02))
        assert abs(angle) == pytest.approx(parameter("rotate", severity), abs=0.03)


def test_shear_slants_a_vertical_bar_by_sin_of_the_severity():
    bar = torch.zeros(1, 1, 32, 32)
    bar[0, 0, 2:30, 15:17] = 1.0  # vertical bar through the centre
    for severity in range(1, 6):
        m, xs, ys = _moments(run(bar, "shear", severity)[0, 0])
        slope = float((m * xs * ys).sum() / (m * ys * ys).sum())  # x = slope · y
        assert abs(slope) == pytest.approx(math.sin(parameter("shear", severity)), abs=0.03)


# --- errors ----------------------------------------------------------------------------------


def test_unknown_corruption_is_a_config_error_naming_the_allowed_ones():
    with pytest.raises(ConfigError, match="unknown corruption 'fog'.*gaussian_noise.*translate"):
        run(textured(), "fog", 1)


@pytest.mark.parametrize("severity", [-1, 6, 2.0, True])
def test_severity_outside_0_to_5_is_a_config_error(severity):
    with pytest.raises(ConfigError, match="0..5"):
        corrupt(textured(), "contrast", severity, SEED, range(4))


def test_one_sample_index_per_image_is_required():
    with pytest.raises(ValueError, match="4 images, 3 indices"):
        corrupt(textured(), "contrast", 1, SEED, [0, 1, 2])


def test_uint8_images_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="to_unit_float"):
        corrupt(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), "contrast", 1, SEED, [0, 1])


# --- event data ------------------------------------------------------------------------------

SENSOR = (34, 34, 2)
EVENT_DTYPE = [("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8"), ("i", "<i8")]


def events(n: int = 2000) -> np.ndarray:
    """A time-ordered stream; the extra field `i` names each event so jitter can be measured."""
    rng = np.random.default_rng(0)
    out = np.zeros(n, dtype=EVENT_DTYPE)
    out["x"], out["y"] = rng.integers(0, 34, n), rng.integers(0, 34, n)
    out["t"] = np.sort(rng.integers(100_000, 1_000_000, n))
    out["p"], out["i"] = rng.integers(0, 2, n), np.arange(n)
    return out


@pytest.mark.parametrize("name", list(EVENT_CORRUPTIONS))
def test_event_corruption_is_reproducible_and_leaves_numpys_global_state_alone(name):
    stream = events()
    np.random.seed(123)
    before = np.random.get_state()
    first = corrupt_events(stream, SENSOR, name, 3, SEED, sample_index=5)
    second = corrupt_events(stream, SENSOR, name, 3, SEED, sample_index=5)
    other = corrupt_events(stream, SENSOR, name, 3, SEED, sample_index=6)
    after = np.random.get_state()
    assert first.tobytes() == second.tobytes()
    assert first.tobytes() != other.tobytes()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    assert np.array_equal(stream, events())  # the input is not modified


@pytest.mark.parametrize("name", list(EVENT_CORRUPTIONS))
def test_event_severity_zero_is_a_copy(name):
    stream = events()
    out = corrupt_events(stream, SENSOR, name, 0, SEED)
    assert np.array_equal(out, stream) and out is not stream


def test_noise_events_adds_more_events_with_level():
    stream = events()
    counts = [len(corrupt_events(stream, SENSOR, "noise_events", s, SEED)) for s in range(6)]
    fractions = EVENT_CORRUPTIONS["noise_events"].parameters
    assert counts == [2000] + [2000 + round(f * 2000) for f in fractions]
    out = corrupt_events(stream, SENSOR, "noise_events", 5, SEED)
    assert out["x"].max() < SENSOR[0] and out["y"].max() < SENSOR[1] and set(np.unique(out["p"])) <= {0, 1}
    assert np.all(np.diff(out["t"]) >= 0)


def test_noise_events_are_half_on_half_off_on_a_boolean_polarity_sensor():
    """The simulated camera stores p as bool; its noise must not all come out ON."""
    stream = events()
    boolean = stream.astype([(f, np.bool_ if f == "p" else stream.dtype[f]) for f in stream.dtype.names])
    out = corrupt_events(boolean, SENSOR, "noise_events", 5, SEED)
    added_on = int(out["p"].sum()) - int(boolean["p"].sum())
    added = len(out) - len(boolean)
    assert out.dtype == boolean.dtype and 0.4 < added_on / added < 0.6


def test_drop_events_keeps_fewer_events_with_level():
    stream = events()
    counts = [len(corrupt_events(stream, SENSOR, "drop_events", s, SEED)) for s in range(6)]
    probabilities = EVENT_CORRUPTIONS["drop_events"].parameters
    assert counts == [2000] + [2000 - int(p * 2000 + 0.5) for p in probabilities]  # tonic's rounding


def test_time_jitter_shifts_timestamps_more_with_level_and_keeps_them_ordered():
    stream = events()
    shifts = [0.0]
    for severity in range(1, 6):
        out = corrupt_events(stream, SENSOR, "time_jitter", severity, SEED)
        assert np.all(np.diff(out["t"]) >= 0) and out["t"].min() >= 0
        moved = out["t"] - stream["t"][out["i"]]
        std = EVENT_CORRUPTIONS["time_jitter"].parameters[severity - 1]
        assert np.std(moved) == pytest.approx(std, rel=0.1)
        shifts.append(float(np.abs(moved).mean()))
    assert all(a < b for a, b in zip(shifts, shifts[1:])), shifts


def test_unknown_event_corruption_is_a_config_error_naming_the_allowed_ones():
    with pytest.raises(ConfigError, match="noise_events, drop_events, time_jitter"):
        corrupt_events(events(), SENSOR, "flicker", 1, SEED)


# --- official sets ---------------------------------------------------------------------------


def test_mnist_c_folder_loads_as_uint8_nchw(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 28, 28, 1), dtype=np.uint8)  # MNIST-C layout: [N, 28, 28, 1]
    labels = np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8)
    folder = tmp_path / "mnist_c" / "shot_noise"
    folder.mkdir(parents=True)
    np.save(folder / "test_images.npy", images)
    np.save(folder / "test_labels.npy", labels)
    got_images, got_labels = load_mnist_c(tmp_path, "shot_noise")
    assert got_images.shape == (6, 1, 28, 28) and got_images.dtype == torch.uint8
    assert np.array_equal(got_images[:, 0].numpy(), images[..., 0])
    assert got_labels.tolist() == [3, 1, 4, 1, 5, 9] and got_labels.dtype == torch.int64


def test_cifar10_c_file_unstacks_the_five_severities(tmp_path):
    n = 4
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5 * n, 32, 32, 3), dtype=np.uint8)
    images[:, 0, 0] = np.arange(5 * n)[:, None]  # pixel (0, 0) names the row
    images[:, 1, 2] = [10, 20, 30]  # pixel (1, 2) names the channels
    labels = np.tile(np.array([7, 0, 2, 9]), 5)
    folder = tmp_path / "CIFAR-10-C"
    folder.mkdir()
    np.save(folder / "contrast.npy", images)
    np.save(folder / "labels.npy", labels)
    got, got_labels = load_cifar10_c(tmp_path, "contrast")
    assert got.shape == (5, n, 3, 32, 32) and got.dtype == torch.uint8
    for severity in range(1, 6):
        assert got[severity - 1, :, 0, 0, 0].tolist() == list(range((severity - 1) * n, severity * n))
    assert got[2, 1, :, 1, 2].tolist() == [10, 20, 30]
    assert np.array_equal(got[4, 3].permute(1, 2, 0).numpy(), images[4 * n + 3])
    assert got_labels.tolist() == [7, 0, 2, 9]


def test_missing_official_files_name_the_path_and_the_download(tmp_path):
    with pytest.raises(MissingData, match=r"mnist_c/fog/test_images\.npy(.|\n)*zenodo"):
        load_mnist_c(tmp_path, "fog")
    with pytest.raises(MissingData, match=r"CIFAR-10-C/fog\.npy(.|\n)*zenodo"):
        load_cifar10_c(tmp_path, "fog")
