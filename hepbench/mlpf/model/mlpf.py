"""PFNetDense: the MLPF model, and `build_model(ModelConfig)`.

X (B, N, 12), N a multiple of bin_size → dict of per-element predictions (B, N, ·), see decoding.py.

    mask    = X[..., 0] != 0
    x0      = InputEncoding(X)                              (14 features)
    id:  h_k = CombinedGraphLayer_k(h_{k-1}), h_0 = x0      (num_graph_layers_id layers)
    reg: r_k = CombinedGraphLayer_k(r_{k-1}), r_0 = x0      (num_graph_layers_reg layers)
    concat mode: dec_id  = [x0, h_1 .. h_n] * mask
                 dec_reg = [x0, r_1, r_1, .., r_n, r_n] * mask   (each reg output twice, as in the
                           reference: it sets the width of the pt/energy heads and the parameter count)
    additive mode: h_0 = node encoding of x0, h_k = h_{k-1} + layer_k(h_{k-1}); dec = [x0, h_n] * mask
    → OutputDecoding([X, dec_id, dec_reg, mask])
"""

from __future__ import annotations

import dataclasses
import math

import keras
from keras import ops

from hepbench.mlpf.config import ModelConfig
from hepbench.mlpf.data.format import NUM_X_FEATURES, XCol
from hepbench.mlpf.model.decoding import OutputDecoding
from hepbench.mlpf.model.layers import CombinedGraphLayer, FeedForward, InputEncoding

PRECISION_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


@keras.saving.register_keras_serializable("hepbench")
class PFNetDense(keras.Model):
    def __init__(self, config: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.config = ModelConfig(**(config or {}))
        c, policy = self.config, self.dtype_policy
        graph = dict(
            bin_size=c.bin_size,
            max_num_bins=c.max_num_bins,
            distance_dim=c.distance_dim,
            ffn_dist_hidden_dim=c.ffn_dist_hidden_dim,
            ffn_dist_num_layers=c.ffn_dist_num_layers,
            output_dim=c.output_dim,
            num_node_messages=c.num_node_messages,
            dist_mult=c.dist_mult,
            clip_value_low=c.clip_value_low,
            normalize_degrees=c.normalize_degrees,
            dropout=c.dropout / 2,
            activation=c.activation,
            dtype=policy,
        )
        self.encoding = InputEncoding(name="input_encoding", dtype=policy)
        self.cg_id = [CombinedGraphLayer(name=f"cg_id_{i}", **graph) for i in range(c.num_graph_layers_id)]
        self.cg_reg = [CombinedGraphLayer(name=f"cg_reg_{i}", **graph) for i in range(c.num_graph_layers_reg)]
        if c.node_update_mode == "additive":
            self.node_encoding = {
                stack: FeedForward(
                    c.output_dim, c.output_dim, 1, c.activation, name=f"node_encoding_{stack}", dtype=policy
                )
                for stack in ("id", "reg")
            }
        self.decoding = OutputDecoding(
            hidden_dim=c.decoder_hidden_dim,
            id_num_layers=c.id_num_layers,
            charge_num_layers=c.charge_num_layers,
            pt_num_layers=c.pt_num_layers,
            eta_num_layers=c.eta_num_layers,
            phi_num_layers=c.phi_num_layers,
            energy_num_layers=c.energy_num_layers,
            activation=c.activation,
            dropout=c.dropout,
            regression_use_classification=c.regression_use_classification,
            layernorm=c.decoder_layernorm,
            name="output_decoding",
            dtype=policy,
        )

    def _stack(self, name, layers, x0, mask, training):
        """The decoder input of one stack as a list of masked blocks (their concatenation)."""
        if self.config.node_update_mode == "additive":
            h = self.node_encoding[name](x0, training=training)
            for layer in layers:
                h = h + layer(h, mask, training=training)
            blocks = [h * mask]
        else:
            blocks, h = [], x0
            for layer in layers:
                h = layer(h, mask, training=training)  # graph layer outputs are masked already
                blocks.extend([h, h] if name == "reg" else [h])
        if self.config.skip_connection:
            blocks = [x0 * mask, *blocks]
        return blocks

    def call(self, X, training=None):
        mask = ops.expand_dims(ops.cast(ops.not_equal(X[..., XCol.TYPE], 0), self.compute_dtype), -1)
        x0 = self.encoding(X)
        dec_id = self._stack("id", self.cg_id, x0, mask, training)
        dec_reg = self._stack("reg", self.cg_reg, x0, mask, training)
        return self.decoding([X, dec_id, dec_reg, mask], training=training)

    def get_config(self):
        return {**super().get_config(), "config": dataclasses.asdict(self.config)}


def build_model(cfg: ModelConfig, precision: str = "fp32") -> PFNetDense:
    """A built PFNetDense (all weights created) for `cfg`, computing in `precision`."""
    model = PFNetDense(
        dataclasses.asdict(cfg), dtype=keras.DTypePolicy(PRECISION_POLICIES[precision]), name="pfnet_dense"
    )
    # A symbolic call creates every weight without computing anything (an eager call on zeros
    # took 33 s on JAX, which runs each op of the first call on its own).
    model(keras.KerasTensor((1, cfg.bin_size, NUM_X_FEATURES)))
    return model


def count_parameters(weights) -> int:
    return sum(math.prod(w.shape) for w in weights)


def parameter_counts(model: keras.Model) -> tuple[int, int]:
    """(trainable, non-trainable) parameter counts."""
    return count_parameters(model.trainable_weights), count_parameters(model.non_trainable_weights)
