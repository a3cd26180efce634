"""The JAX theta(x) of monomial libraries is a gather and a product (issue 23): it must
equal the lambdified sympy terms, and other libraries keep the lambdified path."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import sympy

from dynafit._field import VectorField, _monomial_factors, canonical_symbols, vector_field
from dynafit.families import get_family


@pytest.mark.parametrize("family,m", [("linear", 3), ("lotka_volterra", 4), ("polynomial", 5)])
def test_gathered_theta_equals_the_sympy_terms(family, m):
    field = vector_field(get_family(family), m)
    assert field._factors is not None
    x = np.random.default_rng(0).normal(size=(7, m)).astype(np.float32)
    fast = np.asarray(field.theta(jnp.asarray(x)))
    z = canonical_symbols(m)
    slow = np.stack(
        [
            np.broadcast_to(np.asarray(v, np.float32), (7,))
            for v in sympy.lambdify(z, list(field.terms), "numpy")(*x.T)
        ],
        axis=-1,
    )
    np.testing.assert_allclose(fast, slow, rtol=1e-6, atol=1e-6)


def test_non_monomial_terms_keep_the_lambdified_path():
    z = canonical_symbols(2)
    assert _monomial_factors((sympy.Integer(1), z[0], sympy.sin(z[1])), z) is None
    assert _monomial_factors((2 * z[0],), z) is None
    assert _monomial_factors((z[0] ** 2, z[0] * z[1]), z) == [[0, 0], [0, 1]]
    field = VectorField((sympy.Integer(1), sympy.sin(z[1])), (sympy.Integer(1),) * 2, 2)
    assert field._factors is None
    out = np.asarray(field.theta(jnp.asarray([[0.5, 1.0]])))
    np.testing.assert_allclose(out, [[1.0, np.sin(1.0)]], rtol=1e-6)
