"""MLPF as a native torch.nn.Module: the network of hepbench.mlpf.model, layer for layer, in plain
PyTorch, and its loss.

Why a second writing of the model: the Keras model on Keras's torch backend spends most of a step in
Python (15 ms of host time per step on the tiny model of benchmarks/host_overhead.py, against 1 ms
for JAX), and torch.compile cannot capture it whole (Keras breaks Dynamo's graph at every layer
call: 36 breaks on the test's small model). This module is plain tensor arithmetic with static
shapes, so `torch.compile(fullgraph=True)` takes the forward pass and the loss as one graph (and
AOTAutograd their backward pass), and CUDA graphs can replay it (docs/engines.md, "PyTorch").

It is the same model, not a look-alike:
- the same arithmetic in the same order as hepbench/mlpf/model/layers.py, decoding.py, mlpf.py and
  losses.py (the block-list FeedForward, the augmented-vector distance, the unique sort keys, the
  float32 kernel, degrees and layer norm in every precision); a change there is a change here, and
  the parity tests (tests/mlpf/train/test_parity.py) fail until both agree;
- the same weights: `initial_weights` builds the Keras model (symbolically: no computation) and
  draws its NumPy initial values (hepbench.mlpf.model.init), and every parameter here carries the
  Keras variable's path (`keras_path`), so both start from the same numbers for a seed;
- the same precision policies: float32 parameters, computation in the policy's dtype (bf16, fp16),
  each weight cast to it where it is used, as Keras's mixed policies do.

Shapes as in layers.py: B events, N elements (a multiple of bin_size); `mask` is (B, N, 1).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from hepbench.mlpf.config import LossWeights, ModelConfig
from hepbench.mlpf.data.format import NUM_CLASSES, NUM_ELEMENT_TYPES, NUM_X_FEATURES, XCol, YCol
from hepbench.mlpf.model.losses import REGRESSION

COMPUTE_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
MODEL_NAME = "pfnet_dense"  # the Keras model's name: the first part of every variable's path
LAYER_NORM_EPSILON = 1e-3  # keras.layers.LayerNormalization's default
_ACTIVATIONS = {"elu": F.elu, "relu": F.relu, "gelu": F.gelu, "selu": F.selu, "swish": F.silu, "tanh": torch.tanh}


def keras_path(name: str) -> str:
    """The Keras variable path of the parameter or buffer called `name` here
    (cg_id_0.msg_0.theta → pfnet_dense/cg_id_0/msg_0/theta)."""
    return f"{MODEL_NAME}/{name.replace('.', '/')}"


class Dense(torch.nn.Module):
    """keras.layers.Dense: act(x @ kernel + bias), kernel (in, out) as Keras stores it."""

    def __init__(self, width_in: int, width_out: int, activation: str | None):
        super().__init__()
        self.kernel = torch.nn.Parameter(torch.empty(width_in, width_out))
        self.bias = torch.nn.Parameter(torch.empty(width_out))
        self.activation = _ACTIVATIONS[activation] if activation else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._activate(torch.matmul(x, self.kernel.to(x.dtype)) + self.bias.to(x.dtype))

    def forward_blocks(self, blocks: list[torch.Tensor]) -> torch.Tensor:
        """forward(concatenation of `blocks`) without materialising it: one product per block with
        the matching rows of the kernel, summed onto the bias (FeedForward's list input)."""
        dt = blocks[0].dtype
        z, start = self.bias.to(dt), 0
        for block in blocks:
            width = block.shape[-1]
            z = z + torch.matmul(block, self.kernel[start : start + width].to(dt))
            start += width
        return self._activate(z)

    def _activate(self, z: torch.Tensor) -> torch.Tensor:
        return self.activation(z) if self.activation is not None else z


class FeedForward(torch.nn.Module):
    """layers.FeedForward: `num_layers` hidden Dense layers (halving when dim_decrease), a linear
    output layer, dropout after each hidden one. A list input stands for its concatenation."""

    def __init__(
        self,
        width_in: int,
        output_dim: int,
        hidden_dim: int,
        num_layers: int,
        activation: str,
        dim_decrease: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.num_layers, self.dropout, widths = num_layers, dropout, [width_in]
        for i in range(num_layers):
            widths.append(hidden_dim if i == 0 else (max(1, widths[-1] // 2) if dim_decrease else widths[-1]))
        for i in range(num_layers):
            self.add_module(f"dense_{i}", Dense(widths[i], widths[i + 1], activation))
        self.add_module(f"dense_{num_layers}", Dense(widths[-1], output_dim, None))
        self.layers = [getattr(self, f"dense_{i}") for i in range(num_layers + 1)]  # (not registered twice)

    def forward(self, x, training: bool) -> torch.Tensor:
        for i, dense in enumerate(self.layers):
            x = dense.forward_blocks(x) if isinstance(x, (list, tuple)) else dense(x)
            if i < self.num_layers and self.dropout > 0:
                x = F.dropout(x, self.dropout, training)
        return x


class GHConvDense(torch.nn.Module):
    """layers.GHConvDense: act(g * D^-1/2 A D^-1/2 (x theta) + (1 - g) * x W_h) * mask,
    g = sigmoid(x W_t + b_t)."""

    def __init__(self, width_in: int, output_dim: int, activation: str, normalize_degrees: bool):
        super().__init__()
        self.w_t = torch.nn.Parameter(torch.empty(width_in, output_dim))
        self.b_t = torch.nn.Parameter(torch.empty(output_dim))
        self.w_h = torch.nn.Parameter(torch.empty(width_in, output_dim))
        self.theta = torch.nn.Parameter(torch.empty(width_in, output_dim))
        self.activation, self.normalize_degrees = _ACTIVATIONS[activation], normalize_degrees

    def forward(self, x, adj, mask):
        dt = x.dtype
        f_hom = torch.matmul(x, self.theta.to(dt))
        f_het = torch.matmul(x, self.w_h.to(dt))
        gate = torch.sigmoid(torch.matmul(x, self.w_t.to(dt)) + self.b_t.to(dt))
        if self.normalize_degrees:
            degree = torch.matmul(adj, mask)
            norm = torch.rsqrt(degree.float() + 1e-6).to(dt) * mask
            f_hom = torch.matmul(adj, f_hom * norm) * norm
        else:
            f_hom = torch.matmul(adj, f_hom * mask)
        return self.activation(gate * f_hom + (1.0 - gate) * f_het) * mask


def gaussian_adjacency(x_dist, dist_mult: float, clip_value_low: float):
    """layers.gaussian_adjacency: clip(exp(-dist_mult * ||x_i - x_j||), clip_value_low, 1) per bin."""
    sq = torch.sum(torch.square(x_dist), dim=-1, keepdim=True)
    one = torch.ones_like(sq)
    left = torch.cat([-2.0 * x_dist, sq, one], dim=-1)
    right = torch.cat([x_dist, one, sq], dim=-1)
    d2 = torch.matmul(left, right.transpose(-1, -2))
    adj = torch.exp(-dist_mult * torch.sqrt(torch.clamp(d2, min=1e-6)))
    if clip_value_low > 0.0:
        adj = torch.clamp(adj, min=clip_value_low)
    return adj


class CombinedGraphLayer(torch.nn.Module):
    """layers.CombinedGraphLayer: learned-distance LSH binning, GHConvDense inside each bin, the
    elements back in their original order."""

    def __init__(self, width_in: int, c: ModelConfig, dropout: float):
        super().__init__()
        self.bin_size, self.output_dim, self.dropout = c.bin_size, c.output_dim, dropout
        self.dist_mult, self.clip_value_low = c.dist_mult, c.clip_value_low
        self.ffn_dist = FeedForward(
            width_in, c.distance_dim, c.ffn_dist_hidden_dim, c.ffn_dist_num_layers, c.activation, dropout=dropout
        )
        # A fixed random rotation, never trained: a buffer (it moves with the module, has no gradient).
        self.register_buffer("lsh_projections", torch.empty(c.distance_dim, c.max_num_bins // 2))
        widths = [width_in] + [c.output_dim] * c.num_node_messages
        for i in range(c.num_node_messages):
            self.add_module(f"msg_{i}", GHConvDense(widths[i], c.output_dim, c.activation, c.normalize_degrees))
        self.num_node_messages = c.num_node_messages

    def forward(self, x, mask, training: bool):
        batch, n = x.shape[0], x.shape[1]
        n_bins = n // self.bin_size
        x_dist = self.ffn_dist(x, training)

        proj = self.lsh_projections[:, : max(1, n_bins // 2)]
        mul = torch.matmul(x_dist, proj.to(x_dist.dtype))
        bin_idx = torch.argmax(torch.cat([mul, -mul], dim=-1), dim=-1)
        bin_idx = bin_idx + (1 - mask[..., 0].to(torch.int64)) * (n_bins - 1)
        key = bin_idx * n + torch.arange(n, device=x.device)
        order = torch.argsort(key, dim=-1)

        offsets = (torch.arange(batch, device=x.device) * n).unsqueeze(-1)
        flat_order = (order + offsets).reshape(-1)

        def to_bins(t):
            rows = torch.index_select(t.reshape(-1, t.shape[-1]), 0, flat_order)
            return rows.reshape(batch, -1, self.bin_size, t.shape[-1])

        x_b, mask_b = to_bins(x), to_bins(mask)
        xd_b = (to_bins(x_dist) * mask_b).float()
        adj = gaussian_adjacency(xd_b, self.dist_mult, self.clip_value_low).to(x_b.dtype)
        for i in range(self.num_node_messages):
            x_b = getattr(self, f"msg_{i}")(x_b, adj, mask_b)
            if self.dropout > 0:
                x_b = F.dropout(x_b, self.dropout, training)

        inverse = (torch.argsort(order, dim=-1) + offsets).reshape(-1)
        out = torch.index_select(x_b.reshape(-1, self.output_dim), 0, inverse)
        return out.reshape(batch, n, self.output_dim)


class LayerNorm(torch.nn.Module):
    """keras.layers.LayerNormalization over the last axis, computed in float32 (as Keras does for
    half-precision inputs), returned in the input's dtype."""

    def __init__(self, width: int):
        super().__init__()
        self.gamma = torch.nn.Parameter(torch.empty(width))
        self.beta = torch.nn.Parameter(torch.empty(width))

    def forward(self, x):
        out = F.layer_norm(x.float(), (x.shape[-1],), self.gamma, self.beta, LAYER_NORM_EPSILON)
        return out.to(x.dtype)


class OutputDecoding(torch.nn.Module):
    """decoding.OutputDecoding: the point-wise heads (see that module for the widths)."""

    HEADS = (("cls", NUM_CLASSES), ("charge", 1), ("pt", 2), ("eta", 1), ("phi", 2), ("energy", 1))

    def __init__(self, id_width: int, reg_width: int, c: ModelConfig):
        super().__init__()
        self.use_classification = c.regression_use_classification
        logits = NUM_CLASSES if self.use_classification else 0
        widths = {
            "cls": id_width,
            "charge": id_width,
            "eta": id_width + logits,
            "phi": id_width + logits,
            "pt": id_width + 2 * logits + reg_width,
            "energy": id_width + 2 * logits + reg_width,
        }
        layers = {
            "cls": c.id_num_layers,
            "charge": c.charge_num_layers,
            "pt": c.pt_num_layers,
            "eta": c.eta_num_layers,
            "phi": c.phi_num_layers,
            "energy": c.energy_num_layers,
        }
        for name, size in self.HEADS:
            self.add_module(
                f"ffn_{name}",
                FeedForward(
                    widths[name],
                    size,
                    c.decoder_hidden_dim,
                    layers[name],
                    c.activation,
                    dim_decrease=True,
                    dropout=c.dropout,
                ),
            )
        self.layernorm_id = LayerNorm(id_width) if c.decoder_layernorm else None

    def forward(self, X, id_blocks, reg_blocks, mask, training: bool) -> dict:
        X = X.to(mask.dtype)
        enc_id = torch.cat(id_blocks, dim=-1)
        if self.layernorm_id is not None:
            enc_id = self.layernorm_id(enc_id)
        logits = self.ffn_cls(enc_id, training) * mask
        charge = self.ffn_charge(enc_id, training) * mask
        x_id = [enc_id, logits.detach()] if self.use_classification else [enc_id]
        eta_corr = self.ffn_eta(x_id, training) * mask
        phi_corr = self.ffn_phi(x_id, training) * mask
        x_reg = [*x_id, *reg_blocks, logits.detach()] if self.use_classification else [*x_id, *reg_blocks]
        energy_corr = self.ffn_energy(x_reg, training) * mask
        pt_corr = self.ffn_pt(x_reg, training) * mask

        def col(c):
            return X[..., c : c + 1]

        out = {
            "cls_logits": logits,
            "charge": charge,
            "pt": torch.abs(col(XCol.PT) * pt_corr[..., 0:1] + pt_corr[..., 1:2]),
            "eta": torch.clamp(col(XCol.ETA) + eta_corr, -7.0, 7.0),
            "sin_phi": torch.clamp(col(XCol.SIN_PHI) + phi_corr[..., 0:1], -1.0, 1.0),
            "cos_phi": torch.clamp(col(XCol.COS_PHI) + phi_corr[..., 1:2], -1.0, 1.0),
            "energy": torch.abs(col(XCol.ENERGY) * mask + energy_corr),
        }
        out = {k: (v * mask).float() for k, v in out.items()}
        out["cls"] = torch.softmax(out["cls_logits"], dim=-1) * mask.float()
        return out


class PFNetDense(torch.nn.Module):
    """mlpf.PFNetDense: X (B, N, 12) → dict of per-element predictions, float32 (decoding.OUTPUTS)."""

    def __init__(self, c: ModelConfig, precision: str = "fp32"):
        super().__init__()
        self.config, self.compute_dtype = c, COMPUTE_DTYPES[precision]
        width = NUM_X_FEATURES - 1 + NUM_ELEMENT_TYPES
        self.additive = c.node_update_mode == "additive"
        if self.additive:
            for stack in ("id", "reg"):
                self.add_module(
                    f"node_encoding_{stack}", FeedForward(width, c.output_dim, c.output_dim, 1, c.activation)
                )
        graph_in = c.output_dim if self.additive else width
        for stack in ("id", "reg"):
            depth = getattr(c, f"num_graph_layers_{stack}")
            for i in range(depth):
                self.add_module(
                    f"cg_{stack}_{i}",
                    CombinedGraphLayer(graph_in if (i == 0 or self.additive) else c.output_dim, c, c.dropout / 2),
                )
        skip = width if c.skip_connection else 0
        if self.additive:
            id_width = reg_width = skip + c.output_dim
        else:
            id_width = skip + c.num_graph_layers_id * c.output_dim
            reg_width = skip + 2 * c.num_graph_layers_reg * c.output_dim
        self.output_decoding = OutputDecoding(id_width, reg_width, c)

    def _stack(self, name: str, x0, mask, training: bool) -> list:
        c = self.config
        layers = [getattr(self, f"cg_{name}_{i}") for i in range(getattr(c, f"num_graph_layers_{name}"))]
        if self.additive:
            h = getattr(self, f"node_encoding_{name}")(x0, training)
            for layer in layers:
                h = h + layer(h, mask, training)
            blocks = [h * mask]
        else:
            blocks, h = [], x0
            for layer in layers:
                h = layer(h, mask, training)
                blocks.extend([h, h] if name == "reg" else [h])
        return [x0 * mask, *blocks] if c.skip_connection else blocks

    def forward(self, X, training: bool = False) -> dict:
        dt = self.compute_dtype
        kind = X[..., XCol.TYPE]
        mask = (kind != 0).to(dt).unsqueeze(-1)
        x0 = torch.cat([F.one_hot(kind.to(torch.int64), NUM_ELEMENT_TYPES).to(dt), X[..., 1:].to(dt)], dim=-1)
        dec_id = self._stack("id", x0, mask, training)
        dec_reg = self._stack("reg", x0, mask, training)
        return self.output_decoding(X, dec_id, dec_reg, mask, training)

    def keras_named_tensors(self) -> list[tuple[str, torch.Tensor]]:
        """(Keras variable path, tensor) of every parameter and buffer."""
        named = [*self.named_parameters(), *self.named_buffers()]
        return [(keras_path(name), tensor) for name, tensor in named]


def initial_weights(model_cfg: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    """{Keras variable path: initial value} of the Keras model for `seed` (hepbench.mlpf.model.init),
    dropout's seed states left out (torch's dropout draws from torch's generators). The engine's
    configure() cleared Keras's session before."""
    import keras

    from hepbench.mlpf.model.init import initial_values
    from hepbench.mlpf.model.mlpf import build_model

    with keras.device("cpu"):  # the symbolic build creates the variables: no GPU memory for them
        model = build_model(model_cfg)
        values = initial_values(model, seed)
    return {v.path: a for v, a in zip(model.variables, values) if not v.path.endswith("seed_generator_state")}


def assign_weights(model: PFNetDense, values: dict[str, np.ndarray]) -> None:
    """Copy `values` (by Keras path) into the module; ValueError unless both have exactly the same
    paths and shapes (a layer written differently here than in hepbench.mlpf.model)."""
    named = dict(model.keras_named_tensors())
    if set(named) != set(values):
        missing, extra = sorted(set(values) - set(named)), sorted(set(named) - set(values))
        raise ValueError(f"the torch module and the Keras model differ: only in Keras {missing}, only here {extra}")
    with torch.no_grad():
        for path, tensor in named.items():
            if tuple(tensor.shape) != np.shape(values[path]):
                raise ValueError(f"{path}: shape {tuple(tensor.shape)} here, {np.shape(values[path])} in Keras")
            tensor.copy_(torch.from_numpy(np.asarray(values[path], np.float32)))


def build_module(model_cfg: ModelConfig, precision: str, seed: int, device: torch.device) -> PFNetDense:
    """The module with the Keras model's NumPy initial weights for `seed`, on `device`."""
    model = PFNetDense(model_cfg, precision)
    assign_weights(model, initial_weights(model_cfg, seed))
    return model.to(device)


def mlpf_losses(X, y, outputs: dict, weights: LossWeights, normalizer=None) -> dict:
    """hepbench.mlpf.model.losses.mlpf_losses in PyTorch (float32 scalars): the same terms, the
    same sample weights, the same normalisation."""
    y = y.float()
    real = (X[..., XCol.TYPE] != 0).float()
    particle = real * (y[..., YCol.TYPE] != 0).float()
    n_real = torch.clamp(torch.sum(real), min=1.0) if normalizer is None else torch.clamp(normalizer, min=1e-6)
    target = F.one_hot(y[..., YCol.TYPE].to(torch.int64), NUM_CLASSES).float()
    cce = -torch.sum(target * torch.log(torch.clamp(outputs["cls"], 1e-7, 1.0)), dim=-1)
    losses = {"cls": torch.sum(cce * real) / n_real}
    for name, (column, delta) in REGRESSION.items():
        error = outputs[name][..., 0] - y[..., column]
        if delta is None:
            per_element = torch.square(error)
        else:
            a = torch.abs(error)
            per_element = torch.where(a <= delta, 0.5 * torch.square(error), delta * (a - 0.5 * delta))
        losses[name] = torch.sum(per_element * (real if name == "charge" else particle)) / n_real
    losses["loss"] = sum(getattr(weights, name) * value for name, value in losses.items())
    return losses


def real_elements(X) -> torch.Tensor:
    """The batch's real (non-padding) elements, float32."""
    return torch.sum((X[..., XCol.TYPE] != 0).float())


def parameter_counts(model: PFNetDense) -> tuple[int, int]:
    """(trainable, non-trainable) as Keras counts them: the LSH projections are non-trainable."""
    return (sum(math.prod(p.shape) for p in model.parameters()), sum(math.prod(b.shape) for b in model.buffers()))
