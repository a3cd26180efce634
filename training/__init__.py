"""training: the equinox + optax trainer that records circle-magnitude trajectories.

``train(config, seeds)`` trains one vmapped batch of seeds and returns a
:class:`dynafit.Trajectory`; ``python -m training`` (= ``dynafit train``) is its command.
"""

from .config import TrainConfig as TrainConfig
from .config import parse_seeds as parse_seeds


def __getattr__(name: str):
    # train is imported lazily so that `from training import TrainConfig` stays light.
    if name == "train":
        from .trainer import train

        return train
    raise AttributeError(f"module 'training' has no attribute {name!r}")


__all__ = ["TrainConfig", "parse_seeds", "train"]
