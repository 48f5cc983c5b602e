"""Keras layers of MLPF: input encoding, feed-forward blocks, GHConvDense and the LSH graph layer.

Facts: docs/model.md. Shapes: B events, N elements (a multiple of
bin_size), F features; `mask` is (B, N, 1) with 1 for real elements and 0 for padding.
"""

from __future__ import annotations

import keras
from keras import ops

from hepbench.mlpf.data.format import NUM_ELEMENT_TYPES, XCol


@keras.saving.register_keras_serializable("hepbench")
class InputEncoding(keras.layers.Layer):
    """One-hot of the element type (column 0) followed by the 11 other features: 12 → 14."""

    def call(self, X):
        kind = ops.one_hot(ops.cast(X[..., XCol.TYPE], "int32"), NUM_ELEMENT_TYPES, dtype=self.compute_dtype)
        return ops.concatenate([kind, ops.cast(X[..., 1:], self.compute_dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] - 1 + NUM_ELEMENT_TYPES)


@keras.saving.register_keras_serializable("hepbench")
class FeedForward(keras.layers.Layer):
    """`num_layers` hidden Dense(hidden_dim, activation), halving the width after each one when
    `dim_decrease`, then a linear Dense(output_dim); dropout after each hidden layer.

    The input may be a list of tensors that stand for their concatenation along the features:
    the first layer then sums one product per block with the matching rows of its kernel. Same
    weights, same arithmetic, but the wide concatenation (and its gradient, a slice per block)
    is never materialised.
    """

    def __init__(
        self, output_dim, hidden_dim, num_layers=1, activation="elu", dim_decrease=False, dropout=0.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.output_dim, self.hidden_dim, self.num_layers = output_dim, hidden_dim, num_layers
        self.activation, self.dim_decrease, self.dropout = activation, dim_decrease, dropout
        self.hidden, width = [], hidden_dim
        for i in range(num_layers):
            self.hidden.append(
                keras.layers.Dense(width, activation=activation, name=f"dense_{i}", dtype=self.dtype_policy)
            )
            if dim_decrease:
                width = max(1, width // 2)
        self.out = keras.layers.Dense(output_dim, name=f"dense_{num_layers}", dtype=self.dtype_policy)
        self.drop = keras.layers.Dropout(dropout, dtype=self.dtype_policy) if dropout > 0 else None

    def build(self, input_shape):
        if _is_shape_list(input_shape):
            shape = (*input_shape[0][:-1], sum(s[-1] for s in input_shape))
        else:
            shape = tuple(input_shape)
        for dense in self.hidden:
            dense.build(shape)
            shape = (*shape[:-1], dense.units)
        self.out.build(shape)

    def call(self, x, training=None):
        layers = [*self.hidden, self.out]
        if isinstance(x, (list, tuple)) and len(x) == 1:  # (ops.split into one part fails on torch)
            x = x[0]
        if isinstance(x, (list, tuple)):
            first = layers.pop(0)
            kernels = ops.split(first.kernel, _split_points([ops.shape(t)[-1] for t in x]), axis=0)
            z = first.bias
            for block, kernel in zip(x, kernels):
                z = z + ops.matmul(block, kernel)
            x = first.activation(z)
            if first is not self.out and self.drop is not None:
                x = self.drop(x, training=training)
        for dense in layers:
            x = dense(x)
            if dense is not self.out and self.drop is not None:
                x = self.drop(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        lead = input_shape[0][:-1] if _is_shape_list(input_shape) else input_shape[:-1]
        return (*lead, self.output_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "output_dim": self.output_dim,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "activation": self.activation,
            "dim_decrease": self.dim_decrease,
            "dropout": self.dropout,
        }


def _is_shape_list(shape) -> bool:
    return isinstance(shape, (list, tuple)) and len(shape) > 0 and isinstance(shape[0], (list, tuple))


def _split_points(widths) -> list[int]:
    points, total = [], 0
    for w in widths[:-1]:
        total += w
        points.append(total)
    return points


@keras.saving.register_keras_serializable("hepbench")
class GHConvDense(keras.layers.Layer):
    """Gated graph convolution on dense per-bin adjacency matrices.

    out = act(g * D^-1/2 A D^-1/2 (x theta) + (1 - g) * x W_h) * mask,  g = sigmoid(x W_t + b_t),
    with the degree D = sum_j A_ij mask_j + 1e-6 (normalize_degrees).
    """

    def __init__(self, output_dim, activation="elu", normalize_degrees=True, **kwargs):
        super().__init__(**kwargs)
        self.output_dim, self.normalize_degrees = output_dim, normalize_degrees
        self.activation = keras.activations.get(activation)
        self._activation_name = activation
        # Kept: hepbench.mlpf.model.init draws the initial weights from it.
        self.weight_initializer = keras.initializers.RandomNormal(stddev=0.05)

    def build(self, input_shape):
        x_shape = input_shape[0]
        width = x_shape[-1]
        init = self.weight_initializer
        self.W_t = self.add_weight(shape=(width, self.output_dim), initializer=init, name="w_t")
        self.b_t = self.add_weight(shape=(self.output_dim,), initializer=init, name="b_t")
        self.W_h = self.add_weight(shape=(width, self.output_dim), initializer=init, name="w_h")
        self.theta = self.add_weight(shape=(width, self.output_dim), initializer=init, name="theta")

    def call(self, inputs):
        x, adj, mask = inputs  # (..., n, F), (..., n, n), (..., n, 1)
        f_hom = ops.matmul(x, self.theta)
        f_het = ops.matmul(x, self.W_h)
        gate = ops.sigmoid(ops.matmul(x, self.W_t) + self.b_t)
        # No masking of x: padded columns of `adj` are masked through `norm` below, and padded
        # rows of the output by the final mask (one fused GEMM sliced in three was slower: the
        # gradient of each slice is a full-size zero-padded tensor).
        if self.normalize_degrees:
            # Degrees over real neighbours only: A @ mask, rather than masking the n x n matrix.
            degree = ops.matmul(adj, mask)
            # In float32: CPUs flush float16 subnormals such as 1e-6 to zero, and rsqrt(0) * 0 is NaN.
            norm = ops.cast(ops.rsqrt(ops.cast(degree, "float32") + 1e-6), x.dtype) * mask
            f_hom = ops.matmul(adj, f_hom * norm) * norm
        else:
            f_hom = ops.matmul(adj, f_hom * mask)
        return self.activation(gate * f_hom + (1.0 - gate) * f_het) * mask

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], self.output_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "output_dim": self.output_dim,
            "activation": self._activation_name,
            "normalize_degrees": self.normalize_degrees,
        }


def gaussian_adjacency(x_dist, dist_mult, clip_value_low):
    """A_ij = clip(exp(-dist_mult * ||x_i - x_j||_2), clip_value_low, 1) within each bin.

    Padded elements are not masked here: GHConvDense masks their rows and columns through the
    degree normalisation, which costs a vector instead of two passes over the n x n matrix.
    """
    # |a|^2 + |b|^2 - 2 a.b as one matmul of augmented vectors [-2a, |a|^2, 1] . [b, 1, |b|^2]:
    # saves two broadcast additions over the n x n matrix, and their reductions in the backward pass.
    sq = ops.sum(ops.square(x_dist), axis=-1, keepdims=True)
    one = ops.ones_like(sq)
    left = ops.concatenate([-2.0 * x_dist, sq, one], axis=-1)
    right = ops.concatenate([x_dist, one, sq], axis=-1)
    d2 = ops.matmul(left, ops.swapaxes(right, -1, -2))
    adj = ops.exp(-dist_mult * ops.sqrt(ops.maximum(d2, 1e-6)))
    if clip_value_low > 0.0:  # exp(-x) for x >= 0 lies in (0, 1] already: the upper clip is a no-op
        adj = ops.maximum(adj, clip_value_low)
    return adj


@keras.saving.register_keras_serializable("hepbench")
class CombinedGraphLayer(keras.layers.Layer):
    """Learned-distance LSH binning, then GHConvDense message passing inside each bin.

    Elements are projected into a learned distance space, hashed by a fixed random rotation
    (argmax over [x R, -x R]), sorted by hash into equal bins of `bin_size`, connected by a
    Gaussian kernel inside each bin, updated by GHConvDense and put back in their original order.
    Cost is O(N * bin_size), not O(N^2).
    """

    def __init__(
        self,
        bin_size=640,
        max_num_bins=100,
        distance_dim=128,
        ffn_dist_hidden_dim=128,
        ffn_dist_num_layers=1,
        output_dim=256,
        num_node_messages=1,
        dist_mult=0.1,
        clip_value_low=0.0,
        normalize_degrees=True,
        dropout=0.0,
        activation="elu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.bin_size, self.max_num_bins, self.distance_dim = bin_size, max_num_bins, distance_dim
        self.ffn_dist_hidden_dim, self.ffn_dist_num_layers = ffn_dist_hidden_dim, ffn_dist_num_layers
        self.output_dim, self.num_node_messages = output_dim, num_node_messages
        self.dist_mult, self.clip_value_low, self.normalize_degrees = dist_mult, clip_value_low, normalize_degrees
        self.dropout, self.activation = dropout, activation
        policy = self.dtype_policy
        self.ffn_dist = FeedForward(
            distance_dim,
            ffn_dist_hidden_dim,
            ffn_dist_num_layers,
            activation,
            dropout=dropout,
            name="ffn_dist",
            dtype=policy,
        )
        self.messages = [
            GHConvDense(output_dim, activation, normalize_degrees, name=f"msg_{i}", dtype=policy)
            for i in range(num_node_messages)
        ]
        self.drop = keras.layers.Dropout(dropout, dtype=policy) if dropout > 0 else None
        # Kept: hepbench.mlpf.model.init draws the initial projections from it.
        self.lsh_initializer = keras.initializers.RandomNormal(stddev=0.05)

    def build(self, input_shape):
        x_shape = tuple(input_shape)
        self.ffn_dist.build(x_shape)
        # The hash is a fixed random rotation: drawn once, never trained (38,400 weights in the
        # default model: 6 layers x 128 x 50).
        self.lsh_projections = self.add_weight(
            shape=(self.distance_dim, self.max_num_bins // 2),
            initializer=self.lsh_initializer,
            trainable=False,
            name="lsh_projections",
        )
        width = x_shape[-1]
        for msg in self.messages:
            msg.build(((None, None, width), (None, None, None), (None, None, 1)))
            width = self.output_dim

    def call(self, x, mask, training=None):
        batch, n = ops.shape(x)[0], ops.shape(x)[1]
        n_bins = n // self.bin_size
        x_dist = self.ffn_dist(x, training=training)

        # Hash: argmax over [x R, -x R] with max(1, n_bins // 2) projections; padding goes last.
        n_proj = max(1, n_bins // 2) if isinstance(n_bins, int) else ops.maximum(1, n_bins // 2)
        proj = self.lsh_projections[:, :n_proj]
        mul = ops.matmul(x_dist, ops.cast(proj, x_dist.dtype))
        bin_idx = ops.argmax(ops.concatenate([mul, -mul], axis=-1), axis=-1)
        bin_idx = bin_idx + ops.cast((1 - ops.cast(mask[..., 0], "int32")) * (n_bins - 1), bin_idx.dtype)
        # Unique sort keys (hash, position) make the order the same on every backend and put real
        # elements before padding with the same hash, so appended padding never moves them.
        key = ops.cast(bin_idx, "int32") * n + ops.arange(n, dtype="int32")
        order = ops.argsort(key, axis=-1)  # (B, N): element index at each binned position

        # Gather rows with flat indices: one cheap row gather instead of a batched gather.
        offsets = ops.expand_dims(ops.arange(batch, dtype="int32") * n, -1)
        flat_order = ops.reshape(order + offsets, (-1,))

        def to_bins(t):
            width = ops.shape(t)[-1]
            rows = ops.take(ops.reshape(t, (-1, width)), flat_order, axis=0)
            return ops.reshape(rows, (batch, -1, self.bin_size, width))

        x_b, mask_b = to_bins(x), to_bins(mask)
        # The kernel in float32 in every precision: |x|^2 of the distance features overflows
        # float16, and their difference loses all digits in bfloat16.
        xd_b = ops.cast(to_bins(x_dist) * mask_b, "float32")
        adj = ops.cast(gaussian_adjacency(xd_b, self.dist_mult, self.clip_value_low), x_b.dtype)
        for msg in self.messages:
            x_b = msg((x_b, adj, mask_b))
            if self.drop is not None:
                x_b = self.drop(x_b, training=training)

        # Back to the original element order: the inverse permutation.
        inverse = ops.reshape(ops.argsort(order, axis=-1) + offsets, (-1,))
        out = ops.take(ops.reshape(x_b, (-1, self.output_dim)), inverse, axis=0)
        return ops.reshape(out, (batch, n, self.output_dim))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim)

    def get_config(self):
        keys = (
            "bin_size",
            "max_num_bins",
            "distance_dim",
            "ffn_dist_hidden_dim",
            "ffn_dist_num_layers",
            "output_dim",
            "num_node_messages",
            "dist_mult",
            "clip_value_low",
            "normalize_degrees",
            "dropout",
            "activation",
        )
        return {**super().get_config(), **{k: getattr(self, k) for k in keys}}
