"""Where many independent tasks run: this machine's processes, or a Ray cluster.

An executor maps a picklable, module-level function over a list of tasks. It is a
choice of *where* work runs, never of *what* it computes: CPU workers of both backends
run with one XLA intra-op thread, so the same task gives bitwise the same result on
either. The training sweep (``training.sweep``) and the folder fit
(``dynafit._sweepfit.fit_folder``) both run through it.

- :class:`LocalExecutor`: on a CPU-only machine, one spawned worker process per core,
  each with one XLA thread; on a GPU, tasks in turn in this process.
- :class:`RayExecutor`: one Ray task per item (one GPU when the cluster has GPUs, else
  one CPU), retried when its worker dies; connects to a running cluster or starts a
  loopback-only local one and stops it again.

Ray is optional (``pip install "dynafit[ray]"``) and imported only by ``RayExecutor``.
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import contextlib
import dataclasses
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import jax

__all__ = [
    "AbstractExecutor",
    "LocalExecutor",
    "Outcome",
    "RayExecutor",
    "make_executor",
    "one_thread_env",
    "require_ray",
]

#: Environment that gives a CPU worker one XLA intra-op thread. ``NPROC`` is what
#: bounds XLA's CPU thread pool in current jaxlib; the flags cover older XLA CPU runtimes.
ONE_THREAD_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "NPROC": "1",
}

#: Driver environment passed on to Ray workers (local workers inherit all of it): dynafit's
#: own variables and the XLA compile cache, not settings such as JAX_PLATFORMS that
#: would make a GPU node's workers follow a laptop driver.
_FORWARD_PREFIXES = ("DYNAFIT_",)
_FORWARD_NAMES = (
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES",
)

RAY_MISSING = 'the Ray backend needs Ray: pip install "dynafit[ray]" (or choose --backend local)'


def one_thread_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``ONE_THREAD_ENV`` with ``extra`` on top; existing ``XLA_FLAGS`` are kept after ours."""
    env = dict(ONE_THREAD_ENV)
    inherited = os.environ.get("XLA_FLAGS", "").strip()
    if inherited and inherited != env["XLA_FLAGS"]:
        env["XLA_FLAGS"] = f"{env['XLA_FLAGS']} {inherited}"
    env.update(extra or {})
    return env


class Mapper(Protocol):
    """Anything with ``map(fn, items)`` that returns ``fn(item)`` for each item in order:
    an :class:`AbstractExecutor`, a ``concurrent.futures`` executor, a ``multiprocessing``
    pool. ``dynafit.fit_many(executor=...)`` takes one."""

    def map(self, fn: Callable[[Any], Any], items: list[Any], /) -> Iterable[Any]: ...


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One finished task: its position in the task list and its value or its error."""

    index: int
    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class AbstractExecutor(abc.ABC):
    """Runs ``fn(task)`` for each task, somewhere; see the module docstring."""

    #: "local" or "ray"
    backend: str

    @property
    @abc.abstractmethod
    def accelerator(self) -> str:
        """The kind of device a task gets: ``"gpu"``, ``"tpu"`` or ``"cpu"``."""

    @property
    @abc.abstractmethod
    def workers(self) -> int:
        """How many tasks run at once."""

    @abc.abstractmethod
    def imap_unordered(
        self,
        fn: Callable[[Any], Any],
        tasks: Sequence[Any],
        *,
        envs: Sequence[Mapping[str, str] | None] | None = None,
    ) -> Iterator[Outcome]:
        """Yield an :class:`Outcome` per task as each finishes (in any order).

        ``fn`` must be a module-level function and tasks picklable. ``envs`` gives
        per-task environment variables (for example ``JAX_ENABLE_X64``), applied in
        the worker before the task runs. A task's exception comes back as
        ``Outcome.error``; it does not stop the others.
        """

    def map(
        self,
        fn: Callable[[Any], Any],
        tasks: Sequence[Any],
        *,
        env: Mapping[str, str] | None = None,
    ) -> list[Any]:
        """``[fn(task) for task in tasks]`` in task order; the first error is raised."""
        tasks = list(tasks)
        results: list[Any] = [None] * len(tasks)
        errors: dict[int, BaseException | None] = {}
        for out in self.imap_unordered(fn, tasks, envs=[env] * len(tasks)):
            if out.ok:
                results[out.index] = out.value
            else:
                errors[out.index] = out.error
        if errors:
            first = min(errors)
            raise RuntimeError(
                f"{len(errors)} of {len(tasks)} tasks failed; task {first}: {errors[first]}"
            ) from errors[first]
        return results

    def describe(self) -> str:
        return f"{self.backend} ({self.workers} x {self.accelerator})"

    @abc.abstractmethod
    def close(self) -> None:
        """Release workers (and a Ray cluster this executor started)."""

    def __enter__(self) -> AbstractExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------- local
def _init_worker(env: Mapping[str, str]) -> None:
    """Runs first in each spawned worker, before any task and any XLA computation."""
    os.environ.update(env)
    if "JAX_ENABLE_X64" in env:
        # jax reads JAX_ENABLE_X64 when imported, which unpickling this initializer has
        # already done (``import dynafit``); nothing has been traced yet, so set it now.
        jax.config.update("jax_enable_x64", _truthy(env["JAX_ENABLE_X64"]))


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _jax_accelerator() -> str:
    backend = jax.default_backend()
    return "gpu" if backend in ("gpu", "cuda", "rocm") else backend


class LocalExecutor(AbstractExecutor):
    """This machine: one spawned process per core (one XLA thread each), or, on a GPU,
    tasks in turn in this process.

    ``workers`` defaults to the usable cores; ``in_process`` to "a GPU or TPU is
    present". Worker processes start on first use and live until :meth:`close`, so
    compiled programs and imports are reused across tasks.
    """

    backend = "local"

    def __init__(self, workers: int | None = None, *, in_process: bool | None = None):
        if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        if in_process is None:
            self._accelerator = _jax_accelerator()
            in_process = self._accelerator != "cpu"
        else:
            self._accelerator = _jax_accelerator() if in_process else "cpu"
        self._in_process = bool(in_process)
        self._workers = 1 if self._in_process else int(workers or _usable_cpus())
        self._pools: dict[tuple[tuple[str, str], ...], cf.ProcessPoolExecutor] = {}

    @property
    def accelerator(self) -> str:
        return self._accelerator

    @property
    def workers(self) -> int:
        return self._workers

    def _pool(self, env: Mapping[str, str] | None) -> cf.ProcessPoolExecutor:
        key = tuple(sorted((env or {}).items()))
        if key not in self._pools:
            self._pools[key] = cf.ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(one_thread_env(env),),
            )
        return self._pools[key]

    def imap_unordered(self, fn, tasks, *, envs=None) -> Iterator[Outcome]:
        tasks = list(tasks)
        envs = list(envs) if envs is not None else [None] * len(tasks)
        if len(envs) != len(tasks):
            raise ValueError(f"got {len(envs)} envs for {len(tasks)} tasks")
        if self._in_process:
            for i, (task, env) in enumerate(zip(tasks, envs)):
                with _temporary_env(env):
                    try:
                        value = fn(task)
                    except Exception as err:  # noqa: BLE001 - reported per task
                        yield Outcome(i, error=err)
                        continue
                yield Outcome(i, value)
            return
        futures = {
            self._pool(env).submit(fn, task): i for i, (task, env) in enumerate(zip(tasks, envs))
        }
        try:
            for fut in cf.as_completed(futures):
                err = fut.exception()
                if err is None:
                    yield Outcome(futures[fut], fut.result())
                else:
                    yield Outcome(futures[fut], error=err)
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        self._pools.clear()


@contextlib.contextmanager
def _temporary_env(env: Mapping[str, str] | None) -> Iterator[None]:
    """Apply ``env`` in this process for one in-process task (x64 through jax.config)."""
    if not env:
        yield
        return
    saved = {k: os.environ.get(k) for k in env}
    x64 = jax.config.read("jax_enable_x64")
    os.environ.update(env)
    if "JAX_ENABLE_X64" in env:
        jax.config.update("jax_enable_x64", _truthy(env["JAX_ENABLE_X64"]))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        jax.config.update("jax_enable_x64", x64)


# ----------------------------------------------------------------------------- ray
def require_ray(address: str | None = None) -> Any:
    """Import Ray, or raise an ``ImportError`` that says how to install it.

    Without an address (and without ``RAY_ADDRESS``) a local cluster will be started:
    then ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set first (unless set already),
    which makes Ray 2.x bind every port of that cluster to 127.0.0.1. Ray reads it
    once, when first imported.
    """
    if _is_local(address):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray  # pyright: ignore[reportMissingImports]  (an optional extra)
    except ImportError:
        raise ImportError(RAY_MISSING) from None
    return ray


def _is_local(address: str | None) -> bool:
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or None
    return address in (None, "local")


class RayExecutor(AbstractExecutor):
    """One Ray task per item on a Ray cluster.

    ``address``: ``"auto"`` or ``"HOST:PORT"`` of a running cluster; ``None`` uses
    ``RAY_ADDRESS`` when set, else an already-connected Ray, else starts a local
    cluster bound to 127.0.0.1 without the dashboard (``workers`` CPUs, default all)
    and shuts it down on :meth:`close`. Each task asks for one GPU when the cluster
    has GPUs and one CPU otherwise, and is retried ``max_retries`` times when its
    worker process dies (a task that raises is not retried).
    """

    backend = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        max_retries: int = 3,
    ):
        ray = require_ray(address)
        if address is None:
            address = os.environ.get("RAY_ADDRESS") or None
        if address == "local":
            address = None
        self._ray = ray
        self._max_retries = int(max_retries)
        self._started = False
        if not ray.is_initialized():
            if address is None:
                ray.init(
                    num_cpus=workers,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    logging_level="warning",
                )
                self._started = True
            else:
                ray.init(address=address, logging_level="warning")
        resources = ray.cluster_resources()
        self._gpu = resources.get("GPU", 0) > 0
        self._workers = max(1, int(resources.get("GPU" if self._gpu else "CPU", 1)))

    @property
    def accelerator(self) -> str:
        return "gpu" if self._gpu else "cpu"

    @property
    def workers(self) -> int:
        return self._workers

    @property
    def address(self) -> str:
        """The GCS address of the cluster (``HOST:PORT``), for other drivers to join."""
        return self._ray.get_runtime_context().gcs_address

    def _options(self, env: Mapping[str, str] | None) -> dict[str, Any]:
        forwarded = {
            k: v
            for k, v in os.environ.items()
            if k.startswith(_FORWARD_PREFIXES) or k in _FORWARD_NAMES
        }
        forwarded.update(env or {})
        env_vars = forwarded if self._gpu else one_thread_env(forwarded)
        opts: dict[str, Any] = {
            "max_retries": self._max_retries,
            "retry_exceptions": False,
            "runtime_env": {"env_vars": env_vars},
        }
        opts["num_gpus" if self._gpu else "num_cpus"] = 1
        return opts

    def imap_unordered(self, fn, tasks, *, envs=None) -> Iterator[Outcome]:
        ray = self._ray
        tasks = list(tasks)
        envs = list(envs) if envs is not None else [None] * len(tasks)
        if len(envs) != len(tasks):
            raise ValueError(f"got {len(envs)} envs for {len(tasks)} tasks")
        remote = ray.remote(fn)
        refs = {
            remote.options(**self._options(env)).remote(task): i
            for i, (task, env) in enumerate(zip(tasks, envs))
        }
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        value = ray.get(ref)
                    except Exception as err:  # noqa: BLE001 - reported per task
                        yield Outcome(refs[ref], error=err)
                    else:
                        yield Outcome(refs[ref], value)
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False


def make_executor(
    backend: str | AbstractExecutor = "local",
    *,
    address: str | None = None,
    workers: int | None = None,
) -> AbstractExecutor:
    """An executor by name (``"local"`` or ``"ray"``); an executor is returned as is."""
    if isinstance(backend, AbstractExecutor):
        return backend
    if backend == "local":
        if address is not None:
            raise ValueError("--address is for --backend ray")
        return LocalExecutor(workers)
    if backend == "ray":
        return RayExecutor(address, workers=workers)
    raise ValueError(f"unknown backend {backend!r}; choose 'local' or 'ray'")
