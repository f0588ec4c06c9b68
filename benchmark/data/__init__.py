"""Datasets: image and event datasets, the event camera, corruptions and training augmentation.

    registry           what a dataset is, where its raw files are checked (`get_dataset`, `verify`)
    images             MNIST, Fashion-MNIST, CIFAR-10, scikit-learn digits (raw loaders)
    events             how events become frames (`Framing`, `Framer`), cached per split
    event_sources      N-MNIST, DVS Gesture, SHD (tonic), Fashion-MNIST-DVS (simulated)
    event_camera       the simulated event camera
    temporal_patterns  a synthetic event dataset whose class is in the spike timing, not the counts
    prepared           `prepare` and `load_prepared`: datasets/<name>/prepared.pt and meta.json
    replay             prepared samples' events read again and checked against their digests
    corruptions        image corruptions and the official corrupted sets
    event_corruptions  event-stream corruptions
    augment            training augmentation (translation, flip)

Importing the package registers every dataset (its loaders' modules register on import).
"""

from benchmark.data import event_sources, images, temporal_patterns  # noqa: F401  (import registers the datasets)
