"""A CPU's practical matmul ceiling: the FLOP/s of the fastest of repeated n x n matrix products in
one precision, on the framework, threads and CPUs this process trains with (docs/training.md,
"Share of the device's peak"). A copy on a CPU measures it once its engine is configured, before
its clock starts; benchmarks/train_step_speed.py measures the same way (on a GPU too, `device`).

The size doubles from MIN_SIZE while a product of twice the size (8 times the work) would take at
most half the budget, up to MAX_SIZE, so that a slow precision (fp16 on a CPU without fp16
arithmetic) stays within the budget; products of the final size are then timed until the budget is
spent (at least MIN_REPEATS). Each size's first product runs untimed (allocation, kernel choice).

Each framework is imported only inside its own function: a process has one framework.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

MIN_SIZE = 256
MAX_SIZE = 4096
MIN_REPEATS = 3
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # train.precision → the products' dtype
METHOD = (
    f"the fastest of repeated n x n by n x n matrix products (2n^3 FLOP each) in the run's precision, "
    f"on the copy's own framework, threads and CPUs, before its clock; n doubles from {MIN_SIZE} while "
    f"a product of twice the size would take at most half of bench.ceiling_seconds, up to {MAX_SIZE}"
)

Product = Callable[[], None]  # one product, returning once it is done


@dataclass(frozen=True)
class Ceiling:
    """One measurement (the report's copies[].ceiling)."""

    framework: str  # tensorflow, jax or torch
    precision: str  # fp32, bf16 or fp16: the products' dtype
    size: int  # n of the timed products
    repeats: int  # timed products of that size
    seconds: float  # wall time of the whole measurement, every size included
    flops_per_second: float  # 2 n^3 / the fastest timed product
    method: str = METHOD

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"matmul ceiling {self.flops_per_second / 1e9:.1f} GFLOP/s ({self.precision}, {self.size}^2, "
            f"fastest of {self.repeats}, {self.seconds:.1f} s)"
        )


def _inputs(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    return (rng.random((n, n), dtype=np.float32) * 2 - 1), (rng.random((n, n), dtype=np.float32) * 2 - 1)


def _tensorflow(dtype: str, device: str) -> Callable[[int], Product]:
    import tensorflow as tf  # here: a process imports only its own framework

    where = "/GPU:0" if device == "gpu" else "/CPU:0"

    def make(n: int) -> Product:
        with tf.device(where):
            a, b = (tf.cast(tf.constant(x), getattr(tf, dtype)) for x in _inputs(n))

        def run() -> None:
            with tf.device(where):
                tf.linalg.matmul(a, b)[0, 0].numpy()  # reading one element waits for the product

        return run

    return make


def _jax(dtype: str, device: str) -> Callable[[int], Product]:
    import jax  # here: a process imports only its own framework
    import jax.numpy as jnp

    target = jax.devices(device)[0]
    matmul = jax.jit(jnp.matmul)

    def make(n: int) -> Product:
        a, b = (jax.device_put(jnp.asarray(x, dtype=getattr(jnp, dtype)), target) for x in _inputs(n))
        return lambda: matmul(a, b).block_until_ready()

    return make


def _torch(dtype: str, device: str) -> Callable[[int], Product]:
    import torch  # here: a process imports only its own framework

    target = torch.device("cuda" if device == "gpu" else "cpu")  # ROCm's builds answer to "cuda" too
    wait = torch.cuda.synchronize if device == "gpu" else (lambda: None)  # the CPU's products are synchronous

    def make(n: int) -> Product:
        a, b = (torch.from_numpy(x).to(target, getattr(torch, dtype)) for x in _inputs(n))

        def run() -> None:
            torch.matmul(a, b)
            wait()

        return run

    return make


PRODUCTS: dict[str, Callable[[str, str], Callable[[int], Product]]] = {
    "tensorflow": _tensorflow,
    "jax": _jax,
    "torch": _torch,
}


def measure(
    framework: str,
    precision: str,
    budget: float,
    device: str = "cpu",
    max_size: int = MAX_SIZE,
    clock: Callable[[], float] = time.perf_counter,
    products: Callable[[str, str], Callable[[int], Product]] | None = None,
) -> Ceiling:
    """The ceiling of `framework`'s `precision` matmul on this process's CPUs (or, `device` "gpu", its
    first GPU) within about `budget` seconds (see the module docstring). `products` replaces the
    framework's (tests)."""
    if budget <= 0:
        raise ValueError(f"the ceiling's budget must be positive, not {budget}")
    if precision not in DTYPES:
        raise ValueError(f"precision must be one of {tuple(DTYPES)}, not {precision!r}")
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be cpu or gpu, not {device!r}")
    if products is None and framework not in PRODUCTS:
        raise ValueError(f"framework must be one of {tuple(PRODUCTS)}, not {framework!r}")
    make = (products or PRODUCTS[framework])(DTYPES[precision], device)
    start = clock()

    def timed(run: Product) -> float:
        t0 = clock()
        run()
        return clock() - t0

    n = MIN_SIZE
    while True:
        run = make(n)
        run()  # untimed: allocation and kernel choice for this size
        times = [timed(run)]
        if n * 2 > max_size or 8 * times[0] > budget / 2:
            break
        n *= 2
    while sum(times) < budget or len(times) < MIN_REPEATS:
        times.append(timed(run))
    return Ceiling(
        framework=framework,
        precision=precision,
        size=n,
        repeats=len(times),
        seconds=clock() - start,
        flops_per_second=2 * n**3 / max(min(times), 1e-9),
    )
