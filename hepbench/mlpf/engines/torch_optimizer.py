"""The optimizer recipe of hepbench.mlpf.train.optimizer for the native PyTorch module: Keras's Adam
(or AdamW) update rule with the staircase exponential decay, and dynamic loss scaling for fp16,
every parameter updated at once by PyTorch's multi-tensor (`torch._foreach_*`) kernels.

Keras's rule, not torch.optim.Adam's: the two differ in where epsilon enters (Keras divides by
sqrt(v) + eps with the bias corrections folded into the step size; torch.optim adds eps to the
bias-corrected sqrt(v)), and the engines must take the same steps (tests/mlpf/train/test_parity.py):

    lr_t  = learning_rate * lr_decay_rate ** floor(t / lr_decay_steps)     t = updates so far
    w    -= w * weight_decay * lr_t                                          (AdamW only)
    m    += (g - m) (1 - beta_1);   v += (g^2 - v) (1 - beta_2)
    w    -= lr_t sqrt(1 - beta_2^(t+1)) / (1 - beta_1^(t+1)) * m / (sqrt(v) + epsilon)

The update count lives on the host, so the coefficients are host numbers and an update never
waits for the device. Loss scaling (fp16) as keras.optimizers.LossScaleOptimizer: the loss times
the scale (initially 2^15); gradients that are all finite are unscaled and applied, and after
2,000 such steps in a row the scale doubles; any non-finite gradient skips the update and halves
the scale. Deciding to skip reads one flag from the device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from hepbench.mlpf.config import TrainConfig

BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7  # keras.optimizers.Adam's defaults
INITIAL_SCALE, GROWTH_STEPS = 2.0**15, 2000  # keras.optimizers.LossScaleOptimizer's defaults


class Adam:
    """Adam, or AdamW when cfg.weight_decay > 0, over `params` (their `.grad` is not read: `apply`
    takes the gradients)."""

    def __init__(self, params: Sequence[torch.Tensor], cfg: TrainConfig):
        self.params = list(params)
        self.cfg = cfg
        self.name = "adamw" if cfg.weight_decay > 0 else "adam"
        self.iterations = 0
        self.momentums = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.velocities = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def learning_rate(self) -> float:
        c = self.cfg
        return c.learning_rate * c.lr_decay_rate ** (self.iterations // c.lr_decay_steps)

    @torch.no_grad()
    def apply(self, grads: Sequence[torch.Tensor]) -> None:
        lr, step = self.learning_rate(), self.iterations + 1
        if self.cfg.weight_decay > 0:
            torch._foreach_add_(self.params, self.params, alpha=-self.cfg.weight_decay * lr)
        alpha = lr * math.sqrt(1 - BETA_2**step) / (1 - BETA_1**step)
        torch._foreach_lerp_(self.momentums, grads, 1 - BETA_1)
        torch._foreach_lerp_(self.velocities, torch._foreach_mul(grads, grads), 1 - BETA_2)
        denominators = torch._foreach_sqrt(self.velocities)
        torch._foreach_add_(denominators, EPSILON)
        torch._foreach_addcdiv_(self.params, self.momentums, denominators, value=-alpha)
        self.iterations = step

    def state_names(self) -> list[str]:
        n = len(self.params)
        return [
            f"{self.name}/iteration",
            *(f"{self.name}/m_{i}" for i in range(n)),
            *(f"{self.name}/v_{i}" for i in range(n)),
        ]

    def state_tensors(self) -> list[torch.Tensor]:
        """The momentums and velocities (the iteration count is a host number: `state`)."""
        return [*self.momentums, *self.velocities]

    def state(self) -> list[np.ndarray]:
        # (a CPU tensor's .numpy() shares its memory: copied, or the saved state would go on training)
        return [np.array(self.iterations, np.int64), *(t.detach().cpu().numpy().copy() for t in self.state_tensors())]

    def state_shapes(self) -> list[tuple[int, ...]]:
        """The shapes of `state()`'s arrays, without copying them."""
        return [(), *(tuple(t.shape) for t in self.state_tensors())]

    def load_state(self, arrays: Sequence[np.ndarray]) -> None:
        self.iterations = int(arrays[0])
        with torch.no_grad():
            for t, a in zip(self.state_tensors(), arrays[1:]):
                t.copy_(torch.from_numpy(np.asarray(a, np.float32)))


class LossScale:
    """Dynamic loss scaling around `inner` (fp16): scale_loss before backward, apply after."""

    def __init__(self, inner: Adam, growth_steps: int = GROWTH_STEPS):
        self.inner, self.name, self.growth_steps = inner, "loss_scale_optimizer", growth_steps
        self.scale, self.step_counter = INITIAL_SCALE, 0

    @property
    def iterations(self) -> int:
        return self.inner.iterations

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        return loss * self.scale

    @torch.no_grad()
    def apply(self, grads: Sequence[torch.Tensor]) -> None:
        found = torch.zeros((), device=grads[0].device)
        # Unscales in place and sets `found` where any gradient has an inf or NaN.
        torch._amp_foreach_non_finite_check_and_unscale_(
            list(grads), found, torch.full((), 1.0 / self.scale, device=grads[0].device)
        )
        if found.item():
            self.scale, self.step_counter = self.scale / 2, 0
            return
        self.inner.apply(grads)
        if self.step_counter == self.growth_steps - 1:
            self.scale, self.step_counter = self.scale * 2, 0
        else:
            self.step_counter += 1

    def state_names(self) -> list[str]:
        return [f"{self.name}/step_counter", f"{self.name}/dynamic_scale", *self.inner.state_names()]

    def state(self) -> list[np.ndarray]:
        return [np.array(self.step_counter, np.int64), np.array(self.scale, np.float32), *self.inner.state()]

    def state_shapes(self) -> list[tuple[int, ...]]:
        return [(), (), *self.inner.state_shapes()]

    def load_state(self, arrays: Sequence[np.ndarray]) -> None:
        self.step_counter, self.scale = int(arrays[0]), float(arrays[1])
        self.inner.load_state(arrays[2:])


def make_optimizer(params: Sequence[torch.Tensor], cfg: TrainConfig) -> Adam | LossScale:
    optimizer = Adam(params, cfg)
    return LossScale(optimizer) if cfg.precision == "fp16" else optimizer
