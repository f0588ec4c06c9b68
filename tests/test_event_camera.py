"""benchmark.data.event_camera: the simulated saccade recording follows its docstring's equations (by hand
for one step, and against an independent scalar implementation for a whole recording), is
deterministic, independent of the batch, seeded, and emits tonic's event layout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.data.event_camera import (EVENT_DTYPE, EventCamera, events_digest, pixel_thresholds, saccade_path,
                                         simulate)


def camera(**changes) -> EventCamera:
    return EventCamera(**{"threshold_sigma": 0.0, **changes})


# --- the equations by hand ----------------------------------------------------------------------


def test_one_bright_pixel_first_step_by_hand():
    """A 1×1 white image on a 2×2 sensor, A = 1 px, one step per saccade of 100 ms (Δt = 100000 µs),
    C = 0.5, ε = 0.1. Step 1 moves the image from d = (0, 0) to d = (0.5, 1)."""
    cam = camera(sensor=2, amplitude=1.0, steps_per_saccade=1, threshold=0.5, epsilon=0.1)
    times, displacement = saccade_path(cam)
    assert times.tolist() == [0.0, 100000.0, 200000.0, 300000.0]
    assert displacement.tolist() == [[0, 0], [0.5, 1.0], [1.0, 0.0], [0.0, 0.0]]

    events = simulate(np.full((1, 1, 1), 255, np.uint8), cam)[0]
    step1 = events[events["t"] < 100000]

    # pixel (u, v) = (0, 0): E goes from x̃(0, 0) = 1 to x̃(−0.5, −1) = 0 (outside the image)
    l0, l1 = math.log(1 + 0.1), math.log(0 + 0.1)
    n_off = math.floor((l0 - l1) / 0.5)  # ⌊2.398 / 0.5⌋ = 4 OFF events
    times_00 = [math.floor((-0.5 * j) / (l1 - l0) * 100000) for j in range(1, n_off + 1)]  # τ_j = (ℓ_j − L0)/(L1 − L0)
    got_00 = step1[(step1["x"] == 0) & (step1["y"] == 0)]
    assert n_off == 4 and got_00["p"].tolist() == [False] * 4
    assert got_00["t"].tolist() == times_00  # 20850, 41700, 62550, 83400

    # pixel (1, 1): E goes from x̃(1, 1) = 0 to x̃(0.5, 0) = (1 − 0.5)·1 + 0.5·0 = 0.5
    l0, l1 = math.log(0 + 0.1), math.log(0.5 + 0.1)
    n_on = math.floor((l1 - l0) / 0.5)  # ⌊ln 6 / 0.5⌋ = ⌊3.58⌋ = 3 ON events
    times_11 = [math.floor((0.5 * j) / (l1 - l0) * 100000) for j in range(1, n_on + 1)]
    got_11 = step1[(step1["x"] == 1) & (step1["y"] == 1)]
    assert n_on == 3 and got_11["p"].tolist() == [True] * 3
    assert got_11["t"].tolist() == times_11

    # pixel (1, 0): E goes from x̃(1, 0) = 0 to x̃(0.5, −1) = 0: no event
    assert not len(step1[(step1["x"] == 1) & (step1["y"] == 0)])


def test_the_reference_level_carries_the_remainder_into_the_next_step():
    """Pixel (0, 0) above: after 4 OFF events R_1 = ln 1.1 − 4·0.5, so |L_1 − R_1| < C; in step 2
    (d → (1, 0)) its E stays 0, so it emits nothing, and in step 3 (d → (0, 0)) E returns to 1:
    D = ln 1.1 − R_1 = 2.0 exactly 4 thresholds, 4 ON events at levels R_1 + 0.5·j."""
    cam = camera(sensor=2, amplitude=1.0, steps_per_saccade=1, threshold=0.5, epsilon=0.1)
    events = simulate(np.full((1, 1, 1), 255, np.uint8), cam)[0]
    pixel = events[(events["x"] == 0) & (events["y"] == 0)]
    assert not len(pixel[(pixel["t"] >= 100000) & (pixel["t"] < 200000)])
    last = pixel[pixel["t"] >= 200000]
    l_before, l_after = math.log(0.1), math.log(1.1)
    r1 = l_after - 4 * 0.5
    # d(t) in step 3 goes (1, 0) → (0, 0): x̃(0 − d_x, 0) = 1 − d_x rises linearly, but L is taken
    # linear between the step's ends (module docstring), so τ_j = (ℓ_j − L_2)/(L_3 − L_2)
    expected = [math.floor(200000 + (r1 + 0.5 * j - l_before) / (l_after - l_before) * 100000) for j in range(1, 5)]
    assert last["p"].tolist() == [True] * 4
    assert np.abs(last["t"] - np.array(expected)).max() <= 1  # float32 levels: at most 1 µs off


# --- an independent scalar implementation of the docstring ---------------------------------------


def reference(image: np.ndarray, cam: EventCamera) -> list[tuple[int, int, int, bool]]:
    """The module docstring's equations, one pixel and one crossing at a time, in float64."""
    height, width = image.shape
    x = image / 255.0
    c_on, c_off = pixel_thresholds(cam)

    def irradiance(u: int, v: int, dx: float, dy: float) -> float:
        sx, sy = u - dx, v - dy
        x0, y0 = math.floor(sx), math.floor(sy)
        total = 0.0
        for a, wa in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
            for b, wb in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
                if 0 <= a < width and 0 <= b < height:
                    total += wa * wb * x[b, a]
        return total

    times, displacement = saccade_path(cam)
    size = cam.sensor
    log = [[[math.log(irradiance(u, v, *d) + cam.epsilon) for u in range(size)] for v in range(size)]
           for d in displacement]
    reference_level = [row[:] for row in log[0]]
    events = []
    for k in range(1, len(times)):
        for v in range(size):
            for u in range(size):
                difference = log[k][v][u] - reference_level[v][u]
                on = difference > 0
                threshold = float(c_on[v, u] if on else c_off[v, u])
                count = math.floor(abs(difference) / threshold)
                start = reference_level[v][u]
                for j in range(1, count + 1):
                    level = start + (j if on else -j) * threshold
                    tau = (level - log[k - 1][v][u]) / (log[k][v][u] - log[k - 1][v][u])
                    events.append((u, v, math.floor(times[k - 1] + tau * cam.step_us), on))
                reference_level[v][u] = start + (count if on else -count) * threshold
    return sorted(events, key=lambda event: event[2])  # stable: raster order, then j, within a time


@pytest.mark.parametrize("seed", [0, 1])
def test_a_whole_recording_matches_the_scalar_reference(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(4, 4), dtype=np.uint8)
    cam = EventCamera(sensor=6, amplitude=2.0, steps_per_saccade=4, threshold=0.3, threshold_sigma=0.05,
                      epsilon=0.05, seed=seed)
    got = simulate(image[None], cam)[0]
    expected = reference(image, cam)
    assert len(got) == len(expected) > 50
    assert got[["x", "y"]].tolist() == [(u, v) for u, v, _, _ in expected]
    assert got["p"].tolist() == [on for *_, on in expected]
    assert np.abs(got["t"] - np.array([t for _, _, t, _ in expected])).max() <= 1  # float32 vs float64


# --- properties -----------------------------------------------------------------------------------


def fashion_like(n: int, seed: int = 0) -> np.ndarray:
    """Random blobs on a black background, 28×28."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 4:24, 6:22] = rng.integers(0, 256, size=(n, 20, 16), dtype=np.uint8)
    return images


def test_events_have_tonics_layout_sorted_times_and_stay_on_the_sensor():
    cam = EventCamera()
    for events in simulate(fashion_like(3), cam):
        assert events.dtype == EVENT_DTYPE  # == tonic.io.events_struct (tests/test_events.py)
        assert len(events) > 100 and np.all(np.diff(events["t"]) >= 0)
        assert events["x"].min() >= 0 and events["x"].max() < 34 and events["y"].min() >= 0 and events["y"].max() < 34
        assert 0 < events["t"].min() and events["t"].max() < 3 * cam.saccade_ms * 1000
        assert 0 < events["p"].mean() < 1  # both polarities


def test_each_image_gets_the_same_events_whatever_the_batch():
    images = fashion_like(70)  # two sub-batches of 64 and a remainder
    together = simulate(images, EventCamera())
    for index in (0, 63, 64, 69):
        alone = simulate(images[index:index + 1], EventCamera())[0]
        assert np.array_equal(alone, together[index])
    assert [events_digest(e) for e in simulate(images, EventCamera())] == [events_digest(e) for e in together]


def test_the_seed_fixes_the_threshold_mismatch_and_only_it():
    on, off = pixel_thresholds(EventCamera(seed=0))
    assert on.shape == off.shape == (34, 34) and not np.array_equal(on, off)
    assert np.array_equal(on, pixel_thresholds(EventCamera(seed=0))[0])
    assert not np.array_equal(on, pixel_thresholds(EventCamera(seed=1))[0])
    assert abs(float(on.mean()) - 0.5) < 0.01 and 0.02 < float(on.std()) < 0.04
    assert np.all(pixel_thresholds(EventCamera(threshold_sigma=0))[0] == np.float32(0.5))
    images = fashion_like(1)
    assert not np.array_equal(simulate(images, EventCamera(seed=0))[0], simulate(images, EventCamera(seed=1))[0])


def test_a_higher_threshold_gives_fewer_events_and_a_black_image_none():
    images = fashion_like(2)
    assert len(simulate(images, EventCamera(threshold=0.8))[0]) < len(simulate(images, EventCamera(threshold=0.3))[0])
    assert len(simulate(np.zeros((1, 28, 28), np.uint8), EventCamera())[0]) == 0


def test_an_image_that_leaves_the_sensor_is_an_error_naming_the_amplitude():
    with pytest.raises(ValueError, match="amplitude"):
        simulate(fashion_like(1), EventCamera(amplitude=7.0))
    with pytest.raises(ValueError, match="uint8"):
        simulate(fashion_like(1).astype(np.float32), EventCamera())


def test_unknown_or_invalid_camera_keys_are_rejected():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="thresold"):
        EventCamera(thresold=0.2)
    with pytest.raises(ValidationError, match="threshold"):
        EventCamera(threshold=0)
