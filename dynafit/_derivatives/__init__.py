"""Derivative estimation (``_estimate``: forward, centred, smoothed, "auto") and the error
statistics of an estimate (``_errors``: systematic and noise parts, the variance floor of
the information criteria)."""

from ._errors import derivative_error_floor as derivative_error_floor
from ._errors import derivative_error_variance as derivative_error_variance
from ._errors import reference_derivative as reference_derivative
from ._estimate import AUTO_NOISE_FRACTION as AUTO_NOISE_FRACTION
from ._estimate import DERIVATIVES as DERIVATIVES
from ._estimate import check_method as check_method
from ._estimate import differentiate as differentiate
from ._estimate import noise_fraction as noise_fraction
from ._estimate import noise_variance as noise_variance
from ._estimate import recorded_method as recorded_method
from ._estimate import resolve as resolve
from ._estimate import white_noise_derivative as white_noise_derivative
