"""Analytic FLOP count of PFNetDense per event (multiply and add counted separately).

Counts the matrix products, which are nearly all of the work: per element the dense layers, per
bin the bin_size x bin_size distance and message products. Element-wise operations are left out
(a few %). For the default model and a 6400-element event this gives 61.0 GFLOP per forward pass;
TensorFlow's profiler counts 61.4 for the reference (docs/model.md). A training step costs about
three forward passes (forward, and the two products per matmul of the backward pass).
"""

from __future__ import annotations

from hepbench.mlpf.config import ModelConfig
from hepbench.mlpf.data.format import NUM_CLASSES, NUM_ELEMENT_TYPES, NUM_X_FEATURES

TRAINING_FACTOR = 3


def _ffn(width_in: int, out: int, hidden: int, layers: int, dim_decrease: bool) -> int:
    """Multiply-adds per element of a FeedForward block."""
    macs, width = 0, width_in
    for _ in range(layers):
        macs += width * hidden
        width = hidden
        if dim_decrease:
            hidden = max(1, hidden // 2)
    return macs + width * out


def forward_flops(cfg: ModelConfig, n_elements: int) -> int:
    """FLOPs of one forward pass of an event padded to n_elements (a multiple of bin_size)."""
    n = -(-n_elements // cfg.bin_size) * cfg.bin_size
    n_bins = n // cfg.bin_size
    bs, d, o = cfg.bin_size, cfg.distance_dim, cfg.output_dim
    x0 = NUM_X_FEATURES - 1 + NUM_ELEMENT_TYPES
    macs = 0
    for depth in (cfg.num_graph_layers_id, cfg.num_graph_layers_reg):
        width = x0
        if cfg.node_update_mode == "additive":
            macs += n * _ffn(x0, o, o, 1, False)
            width = o
        for _ in range(depth):
            macs += n * _ffn(width, d, cfg.ffn_dist_hidden_dim, cfg.ffn_dist_num_layers, False)
            macs += n * d * max(1, n_bins // 2)  # LSH hash
            macs += n_bins * bs * bs * d  # pairwise distances inside each bin
            w = width
            for _ in range(cfg.num_node_messages):
                macs += n * w * 3 * o  # theta, W_h, W_t
                macs += n_bins * bs * bs * (o + 1)  # A @ f, and the degrees A @ mask
                w = o
            width = o
    if cfg.node_update_mode == "additive":
        dec_id = dec_reg = (x0 if cfg.skip_connection else 0) + o
    else:
        dec_id = (x0 if cfg.skip_connection else 0) + cfg.num_graph_layers_id * o
        dec_reg = (x0 if cfg.skip_connection else 0) + 2 * cfg.num_graph_layers_reg * o
    logits = NUM_CLASSES if cfg.regression_use_classification else 0
    h = cfg.decoder_hidden_dim
    macs += n * (
        _ffn(dec_id, NUM_CLASSES, h, cfg.id_num_layers, True)
        + _ffn(dec_id, 1, h, cfg.charge_num_layers, True)
        + _ffn(dec_id + logits, 1, h, cfg.eta_num_layers, True)
        + _ffn(dec_id + logits, 2, h, cfg.phi_num_layers, True)
        + _ffn(dec_id + 2 * logits + dec_reg, 2, h, cfg.pt_num_layers, True)
        + _ffn(dec_id + 2 * logits + dec_reg, 1, h, cfg.energy_num_layers, True)
    )
    return 2 * macs


def training_flops(cfg: ModelConfig, n_elements: int) -> int:
    return TRAINING_FACTOR * forward_flops(cfg, n_elements)
