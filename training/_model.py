# ruff: noqa: F722
"""The paper's network, its initialisation and one training step (pure JAX, one seed).

Everything here is written for a single run; the trainer vmaps it over seeds.

The forward pass evaluates all p^2 pairs at once on the (second, first) grid: pair
index n = i * p + j has first input a = j and second input b = i (the reference's
``meshgrid`` order), label (a + b) mod p. Because the first layer is linear in
concat(E[a], E[b]), its pre-activation is (E W_a^T)[a] + (E W_b^T)[b] + bias, a
broadcast sum of two (p, hidden) matrices instead of a (p^2, 2 dim) gather and
matmul. Train and test losses are masked means over the same grid, so the test
forward pass costs nothing extra. The result equals the reference's model exactly in
exact arithmetic; in floating point it differs only in summation order.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int

from dynafit import circle_signals

# Stream ids mixed into each part's seed, so equal seeds still give independent draws.
_EMBED, _MLP = 1, 2


class Net(eqx.Module):
    """Embedding E (p, dim) and the MLP 2*dim -> hidden -> hidden -> p with SiLU.

    Weights are stored as torch/equinox ``Linear`` stores them: (out, in).
    """

    embedding: Float[Array, "p dim"]
    w1: Float[Array, "hidden two_dim"]
    b1: Float[Array, " hidden"]
    w2: Float[Array, "hidden hidden"]
    b2: Float[Array, " hidden"]
    w3: Float[Array, "p hidden"]
    b3: Float[Array, " p"]

    def logits(self, embedding: Float[Array, "p dim"] | None = None) -> Float[Array, "pairs p"]:
        """Logits of all p^2 pairs, row n = i * p + j for the pair (a=j, b=i)."""
        e = self.embedding if embedding is None else embedding
        p, dim = e.shape
        pa = e @ self.w1[:, :dim].T  # first input's share, (p, hidden)
        pb = e @ self.w1[:, dim:].T  # second input's share
        h = (pb[:, None, :] + pa[None, :, :] + self.b1).reshape(p * p, -1)
        h = jax.nn.silu(h)
        h = jax.nn.silu(h @ self.w2.T + self.b2)
        return h @ self.w3.T + self.b3


class Split(NamedTuple):
    """One run's data: ``mask`` is 1 on training pairs, 0 on held-out ones."""

    mask: Float[Array, " pairs"]


class Static(NamedTuple):
    """The hashable, compile-time part of a config."""

    p: int
    lr: float
    wd: float
    n_train: int
    freeze_embedding: bool
    record_circles: bool = False


def labels(p: int) -> Int[Array, " pairs"]:
    i, j = np.divmod(np.arange(p * p), p)
    return jnp.asarray((i + j) % p, dtype=jnp.int32)


def n_train(p: int, frac: float) -> int:
    """Training pairs, as the reference counts them: int(p^2 * frac)."""
    return int(p * p * frac)


def optimizer(static: Static) -> optax.GradientTransformation:
    # torch.optim.AdamW defaults (betas, eps); decoupled decay on every parameter.
    return optax.adamw(static.lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=static.wd)


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream])))


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], lim: float) -> np.ndarray:
    return ((rng.random(shape, dtype=np.float32) * 2 - 1) * np.float32(lim)).astype(np.float32)


def init_params(
    embed_seed: int,
    mlp_seed: int,
    *,
    p: int,
    dim: int,
    hidden: int,
    projector: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """One run's float32 initial parameters, drawn on the host with numpy.

    E ~ N(0, 1); each layer's weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as in
    torch's and equinox's ``Linear``. numpy's PCG64 makes the draw the same on every
    platform and independent of JAX's float64 mode; ``projector`` (see
    :func:`intervention_projector`) is applied in float64, then rounded to float32.
    """
    rng = _rng(embed_seed, _EMBED)
    embedding = rng.standard_normal((p, dim), dtype=np.float32)
    if projector is not None:
        embedding = (projector @ embedding.astype(np.float64)).astype(np.float32)
    rng = _rng(mlp_seed, _MLP)
    out: dict[str, np.ndarray] = {"embedding": embedding}
    for i, (fan_in, fan_out) in enumerate(((2 * dim, hidden), (hidden, hidden), (hidden, p)), 1):
        lim = 1.0 / np.sqrt(fan_in)
        out[f"w{i}"] = _uniform(rng, (fan_out, fan_in), lim)
        out[f"b{i}"] = _uniform(rng, (fan_out,), lim)
    return out


def init_mask(split_seed: int, *, p: int, n_train: int) -> np.ndarray:
    """1 on the training pairs: the reference's split, ``np.random.seed(seed);
    np.random.choice(p**2, n_train, replace=False)`` (pair n = (a, b) = (n % p, n // p))."""
    train_id = np.random.RandomState(split_seed).choice(p * p, n_train, replace=False)
    mask = np.zeros(p * p, np.float32)
    mask[train_id] = 1
    return mask


def intervention_projector(p: int, freqs: tuple[int, ...], factor: float) -> np.ndarray | None:
    """Real (p, p) matrix that scales the Fourier components k and p-k of E's token axis.

    M = I + (factor - 1) sum_k P_k with P_k[a, a'] = (2/p) cos(2 pi k (a - a') / p), the
    orthogonal projector onto frequency k's two-dimensional real subspace. Applying M
    equals fft -> multiply bins k and p-k -> ifft (the reference's ``perturb``), and
    leaves every other frequency exactly as it was (up to float rounding).
    """
    if not freqs or factor == 1.0:
        return None
    a = np.arange(p)
    diff = a[:, None] - a[None, :]
    proj = sum((2.0 / p) * np.cos(2 * np.pi * k * diff / p) for k in freqs)
    return np.eye(p) + (factor - 1.0) * proj


def metrics(net: Net, split: Split, labels: Int[Array, " pairs"], static: Static, embedding=None):
    """Train loss (the objective) and (test loss, train acc, test acc)."""
    logits = net.logits(embedding)
    onehot = jax.nn.one_hot(labels, static.p, dtype=logits.dtype)  # no gather: GPU-friendly
    ce = -jnp.sum(jax.nn.log_softmax(logits) * onehot, axis=1)
    correct = (jnp.argmax(logits, axis=1) == labels).astype(ce.dtype)
    mask = split.mask
    n_tr = static.n_train
    n_te = static.p * static.p - n_tr
    train_loss = jnp.sum(ce * mask) / n_tr
    test_loss = jnp.sum(ce * (1 - mask)) / n_te
    train_acc = jnp.sum(correct * mask) / n_tr
    test_acc = jnp.sum(correct * (1 - mask)) / n_te
    return train_loss, (test_loss, train_acc, test_acc)


def _objective(net: Net, split: Split, labels, static: Static):
    embedding = jax.lax.stop_gradient(net.embedding) if static.freeze_embedding else None
    return metrics(net, split, labels, static, embedding)


class Record(NamedTuple):
    """What is kept of every step, for the state *before* the step's update."""

    signals: Float[Array, " circles"]  # S_0..S_m
    train_loss: Float[Array, ""]
    test_loss: Float[Array, ""]
    train_acc: Float[Array, ""]
    test_acc: Float[Array, ""]
    readout: Float[Array, " circles"] | None  # R_0..R_m with record_circles, else None
    gradient: Float[Array, " circles"] | None  # G_0..G_m with record_circles, else None


def circle_readout(net: Net) -> Float[Array, " circles"]:
    """R_k = ||W_a F_k|| + ||W_b F_k||, k = 0..m, F_k the embedding's Fourier component k:
    how strongly the first layer reads circle k (``dynafit.circle_readout``, in JAX)."""
    e = net.embedding
    p, dim = e.shape
    f = jnp.fft.fft(e, axis=0)[: (p - 1) // 2 + 1]  # (m + 1, dim), complex
    w = net.w1.astype(f.dtype)
    return jnp.linalg.norm(f @ w[:, :dim].T, axis=-1) + jnp.linalg.norm(f @ w[:, dim:].T, axis=-1)


def _record(net: Net, metrics_, grad_e, static: Static) -> Record:
    """The record of ``net`` with its metrics and the embedding's loss gradient there."""
    extra = (None, None)
    if static.record_circles:
        extra = (circle_readout(net).astype(grad_e.dtype), circle_signals(grad_e))
    train_loss, (test_loss, train_acc, test_acc) = metrics_
    return Record(circle_signals(net.embedding), train_loss, test_loss, train_acc, test_acc, *extra)


def probe(net: Net, split: Split, labels, static: Static) -> tuple[Record, Array]:
    """The record of a state, and the spectrum || FFT_k(dL/dE) || (k = 0..m) of the
    training loss's embedding gradient there (the paper's "initial gradient" at init)."""
    fn = functools.partial(metrics, net, split, labels, static)
    values, grad = jax.value_and_grad(fn, has_aux=True)(net.embedding)
    return _record(net, values, grad, static), circle_signals(grad)


def step(state, split: Split, labels, static: Static):
    """One full-batch AdamW update; returns the new state and the record of the old one
    (its gradient spectrum is 0 with ``freeze_embedding``: the loss does not reach E)."""
    net, opt_state = state
    values, grads = eqx.filter_value_and_grad(_objective, has_aux=True)(net, split, labels, static)
    updates, opt_state = optimizer(static).update(grads, opt_state, net)
    if static.freeze_embedding:  # no gradient step and no weight decay on E
        updates = eqx.tree_at(lambda n: n.embedding, updates, jnp.zeros_like(net.embedding))
    new_net = eqx.apply_updates(net, updates)
    return (new_net, opt_state), _record(net, values, grads.embedding, static)
