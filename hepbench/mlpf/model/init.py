"""The model's initial weights, drawn with NumPy: the same numbers on every Keras backend.

Each backend's own random generators (TensorFlow's, jax.random, torch's) draw different numbers
for the same seed, so the engines would start from different weights and their losses could not
be compared. `assign_initial_weights` replaces every variable of a built model with a NumPy draw
of the distribution its layer's initializer describes:

    Dense kernels         glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out))
    Dense biases          zeros
    LayerNormalization    gamma ones, beta zeros
    GHConvDense           RandomNormal(0, 0.05): W_t, b_t, W_h, theta
    LSH projections       random_normal: RandomNormal(0, 0.05), not trainable
    dropout seed states   [s, 0], s in [1, 1e9): the state of a Keras SeedGenerator

Every weight has its own generator, seeded by (seed, CRC-32 of the weight's path), so a weight's
values do not depend on which other weights the model has (dropout adds seed states, for
instance). The dropout masks themselves still differ between backends: each draws them with its
own generator from the (equal) seed states.

`set_random_seed` seeds Python, NumPy, Keras and the backend's own generators (dropout seeds) the
way keras.utils.set_random_seed does, without importing TensorFlow into a JAX or PyTorch process.
"""

from __future__ import annotations

import math
import sys
import zlib
from contextlib import contextmanager

import keras
import numpy as np

from hepbench.core.errors import HepbenchError
from hepbench.mlpf.model.layers import CombinedGraphLayer, GHConvDense

_SEED_STATE_HIGH = 10**9  # as keras.random.seed_generator.make_default_seed draws them


class UnknownInitializer(HepbenchError):
    """A variable of the model whose initial distribution this module does not know."""


def _layer_initializers(layer) -> list[tuple[object, object]]:
    """(variable, initializer) of the variables `layer` creates itself (not its sublayers')."""
    if isinstance(layer, keras.layers.Dense):
        pairs = [(layer.kernel, layer.kernel_initializer)]
        return pairs + ([(layer.bias, layer.bias_initializer)] if layer.use_bias else [])
    if isinstance(layer, keras.layers.LayerNormalization):
        pairs = [(layer.gamma, layer.gamma_initializer)] if layer.scale else []
        return pairs + ([(layer.beta, layer.beta_initializer)] if layer.center else [])
    if isinstance(layer, GHConvDense):
        return [(w, layer.weight_initializer) for w in (layer.W_t, layer.b_t, layer.W_h, layer.theta)]
    if isinstance(layer, CombinedGraphLayer):
        return [(layer.lsh_projections, layer.lsh_initializer)]
    return []


def _draw(initializer, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A float64 sample of `initializer`'s distribution."""
    kind = type(initializer)
    if kind is keras.initializers.GlorotUniform:
        fan_in, fan_out = _fans(shape)
        limit = math.sqrt(6.0 / max(1.0, fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)
    if kind is keras.initializers.RandomNormal:
        return rng.normal(float(initializer.mean), float(initializer.stddev), size=shape)
    if kind is keras.initializers.Zeros:
        return np.zeros(shape)
    if kind is keras.initializers.Ones:
        return np.ones(shape)
    raise UnknownInitializer(f"no NumPy draw for the initializer {kind.__name__}")


def _fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """Keras's fan_in and fan_out (keras.src.initializers.random_initializers.compute_fans)."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def _rng(seed: int, path: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(path.encode())])


def initial_values(model: keras.Model, seed: int) -> list[np.ndarray]:
    """The initial value of every variable of the built `model` (model.variables order), drawn
    with NumPy from `seed`; UnknownInitializer naming the first variable it cannot draw."""
    if seed < 0:
        raise ValueError(f"the seed must be >= 0, not {seed}")
    known: dict[int, object] = {}
    seed_states: dict[int, int] = {}  # id(state variable) -> its SeedGenerator's rank in the model
    for layer in model._flatten_layers(include_self=True):
        for variable, initializer in _layer_initializers(layer):
            known[id(variable)] = initializer
        generator = getattr(layer, "seed_generator", None)
        if isinstance(generator, keras.random.SeedGenerator):
            seed_states[id(generator.state)] = len(seed_states)
    values = []
    for variable in model.variables:
        shape = tuple(int(d) for d in variable.shape)
        if id(variable) in seed_states:
            # A seed state's path carries a process-wide counter: its rank among the model's
            # dropout layers names it instead.
            rng = _rng(seed, f"seed_generator:{seed_states[id(variable)]}")
            values.append(np.array([rng.integers(1, _SEED_STATE_HIGH), 0], dtype=variable.dtype))
        elif id(variable) in known:
            try:
                drawn = _draw(known[id(variable)], shape, _rng(seed, variable.path))
            except UnknownInitializer as e:
                raise UnknownInitializer(f"{variable.path}: {e}") from None
            values.append(drawn.astype(variable.dtype))
        else:
            raise UnknownInitializer(
                f"{variable.path}: a variable of no layer whose initializer is known "
                f"(hepbench.mlpf.model.init knows Dense, LayerNormalization, GHConvDense, "
                f"CombinedGraphLayer and dropout seed states)"
            )
    return values


def set_random_seed(seed: int) -> None:
    """keras.utils.set_random_seed(seed); on the JAX and PyTorch backends without its side effect
    of importing TensorFlow (which it seeds whenever TensorFlow is installed)."""
    with _tensorflow_hidden_from_keras():
        keras.utils.set_random_seed(seed)


@contextmanager
def _tensorflow_hidden_from_keras():
    # Keras imports TensorFlow lazily through this module's LazyModule; marking it unavailable
    # skips the import. With TensorFlow imported already (or as the backend), nothing changes.
    from keras.src.utils import module_utils

    lazy = getattr(module_utils, "tensorflow", None)
    if "tensorflow" in sys.modules or not hasattr(lazy, "_available"):  # (Keras on TensorFlow imported it)
        yield
        return
    saved, lazy._available = lazy._available, False
    try:
        yield
    finally:
        lazy._available = saved


def assign_initial_weights(model: keras.Model, seed: int) -> None:
    """Assign `initial_values(model, seed)` to the model's variables (every backend: same values)."""
    for variable, value in zip(model.variables, initial_values(model, seed)):
        variable.assign(value)
