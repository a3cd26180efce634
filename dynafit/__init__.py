"""dynafit: discover the differential equations that govern training dynamics."""

from ._trajectory import Trajectory as Trajectory
from ._trajectory import circle_signals as circle_signals
from ._trajectory import load as load
from ._trajectory import survival_threshold as survival_threshold

__version__ = "0.1.0"
