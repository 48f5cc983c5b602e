"""The matmul ceiling's measurement with a stand-in product and clock: the size grows while the
budget allows, the fastest timed product counts, a slow precision stays small, and bad arguments
are refused naming them. (Each framework's own product: tests/mlpf/run/test_backends.py's runs.)"""

from __future__ import annotations

import pytest

from hepbench.mlpf.engines.ceiling import MAX_SIZE, MIN_REPEATS, MIN_SIZE, measure


class Machine:
    """A clock, and products that advance it by 2n^3 / rate seconds (the first product of a size
    `first` times as long: allocation); `slow` makes every `slow`-th product twice as long."""

    def __init__(self, rate: float, first: float = 3.0, slow: int = 0):
        self.now, self.rate, self.first, self.slow = 0.0, rate, first, slow
        self.made, self.runs = [], 0

    def clock(self) -> float:
        return self.now

    def products(self, dtype: str, device: str):
        self.dtype, self.device = dtype, device

        def make(n: int):
            self.made.append(n)
            fresh = [True]

            def run():
                self.runs += 1
                seconds = 2 * n**3 / self.rate * (self.first if fresh[0] else 1)
                self.now += seconds * (2 if self.slow and self.runs % self.slow == 0 else 1)
                fresh[0] = False

            return run

        return make


def test_a_fast_machine_grows_to_the_largest_size_and_keeps_the_fastest_product():
    m = Machine(rate=200e9, slow=2)
    c = measure("torch", "fp32", 3.0, clock=m.clock, products=m.products)
    assert m.made == [256, 512, 1024, 2048, 4096] and (m.dtype, m.device) == ("float32", "cpu")
    assert (c.framework, c.precision, c.size) == ("torch", "fp32", MAX_SIZE)
    assert c.flops_per_second == pytest.approx(200e9)  # the slowed products do not count
    one = 2 * MAX_SIZE**3 / 200e9  # 0.69 s
    assert c.repeats == 3  # 1.37 + 0.69 + 1.37 s (every other product slowed): the budget spent
    assert c.seconds == pytest.approx(m.now) and c.seconds < 3.0 + 10 * one


def test_a_slow_precision_stays_small_enough_for_the_budget():
    m = Machine(rate=1e9)  # fp16 without fp16 arithmetic
    c = measure("jax", "fp16", 1.0, clock=m.clock, products=m.products)
    # 512: 0.27 s a product, so 1024 (8 times) would take more than half the budget.
    assert (m.dtype, c.size, m.made) == ("float16", 512, [256, 512]) and c.flops_per_second == pytest.approx(1e9)
    assert c.seconds < 2.5 and c.repeats == MIN_REPEATS + 1


def test_a_tiny_budget_still_times_the_smallest_size_a_few_times():
    m = Machine(rate=1e9)
    c = measure("tensorflow", "bf16", 1e-6, clock=m.clock, products=m.products)
    assert (c.size, c.repeats, m.dtype) == (MIN_SIZE, MIN_REPEATS, "bfloat16")


@pytest.mark.parametrize(
    "args, message",
    [
        (("torch", "fp32", 0), "budget must be positive, not 0"),
        (("torch", "tf32", 1), r"precision must be one of \('fp32', 'bf16', 'fp16'\), not 'tf32'"),
        (("mxnet", "fp32", 1), r"framework must be one of \('tensorflow', 'jax', 'torch'\), not 'mxnet'"),
    ],
)
def test_bad_arguments_are_refused_naming_them(args, message):
    with pytest.raises(ValueError, match=message):
        measure(*args)


def test_a_device_other_than_cpu_or_gpu_is_refused():
    with pytest.raises(ValueError, match="device must be cpu or gpu, not 'tpu'"):
        measure("torch", "fp32", 1, device="tpu")
