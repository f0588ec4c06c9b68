"""Training augmentation (benchmark/data/augment.py): translation, horizontal flip, seeding, and the
training loop's use of it."""

from __future__ import annotations

import pytest
import torch

from benchmark.contract.errors import ConfigError
from benchmark.contract.registry import create_method
from benchmark.data.augment import augment, translate
from benchmark.run.config import load_params, resolve_run
from benchmark.run.train import train
from snn.arch import ArchSpec

IMAGE = torch.tensor([[[[1, 2, 3],
                        [4, 5, 6],
                        [7, 8, 9]]]], dtype=torch.uint8)


def test_translate_moves_each_sample_by_its_own_offset_and_fills_with_zero():
    down_one = translate(IMAGE, torch.tensor([1]), torch.tensor([0]))
    left_one = translate(IMAGE, torch.tensor([0]), torch.tensor([-1]))
    up_right = translate(IMAGE, torch.tensor([-1]), torch.tensor([1]))
    assert down_one[0, 0].tolist() == [[0, 0, 0], [1, 2, 3], [4, 5, 6]]
    assert left_one[0, 0].tolist() == [[2, 3, 0], [5, 6, 0], [8, 9, 0]]
    assert up_right[0, 0].tolist() == [[0, 4, 5], [0, 7, 8], [0, 0, 0]]
    both = translate(torch.cat([IMAGE, IMAGE]), torch.tensor([1, 0]), torch.tensor([0, -1]))
    assert torch.equal(both, torch.cat([down_one, left_one]))


def test_every_frame_of_an_event_sample_moves_the_same_way():
    frames = torch.randint(0, 5, (3, 4, 2, 6, 6), dtype=torch.uint8)  # [B, T_f, C, H, W]
    moved = augment(frames, shift=2, hflip=True, generator=torch.Generator().manual_seed(0))
    for b in range(3):
        matches = [(dy, dx, flip) for dy in range(-2, 3) for dx in range(-2, 3) for flip in (False, True)
                   if torch.equal(moved[b], _moved(frames[b], dy, dx, flip))]
        assert matches, f"sample {b} is not one translation (and flip) of all its frames"


def _moved(sample: torch.Tensor, dy: int, dx: int, flip: bool) -> torch.Tensor:
    out = translate(sample.unsqueeze(0), torch.tensor([dy]), torch.tensor([dx]))[0]
    return out.flip(-1) if flip else out


def test_offsets_cover_the_whole_range_and_no_further():
    dot = torch.zeros(2000, 1, 7, 7, dtype=torch.uint8)
    dot[:, :, 3, 3] = 1
    moved = augment(dot, shift=2, hflip=False, generator=torch.Generator().manual_seed(0))
    assert torch.all(moved.flatten(1).sum(1) == 1)  # a centred dot never leaves a 7×7 image at ±2
    rows, cols = moved[:, 0].nonzero()[:, 1], moved[:, 0].nonzero()[:, 2]
    assert set(rows.tolist()) == set(cols.tolist()) == {1, 2, 3, 4, 5}


def test_flip_mirrors_about_half_the_samples():
    batch = IMAGE.repeat(1000, 1, 1, 1)
    out = augment(batch, shift=0, hflip=True, generator=torch.Generator().manual_seed(0))
    flipped = (out == IMAGE.flip(-1)).flatten(1).all(1)
    kept = (out == IMAGE).flatten(1).all(1)
    assert torch.all(flipped ^ kept)
    assert 0.45 < flipped.float().mean() < 0.55


def test_no_augmentation_is_the_identity_and_draws_nothing():
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    assert augment(IMAGE, shift=0, hflip=False, generator=generator) is IMAGE
    assert torch.equal(generator.get_state(), state)


def test_the_same_seed_draws_the_same_augmentation():
    batch = torch.randint(0, 255, (64, 1, 8, 8), dtype=torch.uint8)
    first, second, other = (augment(batch, 2, True, torch.Generator().manual_seed(seed)) for seed in (3, 3, 4))
    assert torch.equal(first, second) and not torch.equal(first, other)


def test_a_negative_shift_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match="augment_shift"):
        create_method("ann", {"augment_shift": -1}, ArchSpec(kind="mlp", hidden=[16]), (1, 8, 8), 10)


def test_training_with_augmentation_is_seeded_and_changes_what_is_learned(workspace):
    params = load_params(workspace / "params.yaml")

    def trained_weights(label: str, **overrides) -> torch.Tensor:
        spec = resolve_run(params, "digits", "ann", 0, overrides=overrides, label=label)
        train(spec, progress=False)
        state = torch.load(spec.run_dir / "model.pt", weights_only=False)["state_dict"]
        return torch.cat([value.flatten() for value in state.values()])

    plain = trained_weights("plain")
    augmented = trained_weights("augmented", augment_shift=1, augment_hflip=True)
    again = trained_weights("again", augment_shift=1, augment_hflip=True)
    assert torch.equal(augmented, again)
    assert not torch.equal(plain, augmented)
