"""Attention's share of a layer's FLOPs: the chapter's closed form for the idealized layer.

Chapter 2.2.2-2.3.1 idealizes one layer as multi-head attention with d x d projections and a
plain 4d FFN, counts the full L x L score matrix, and drops softmax and activation FLOPs:

    attention = Q, K, V, O projections 4 x 2Ld^2 + Q K^T 2L^2 d + P V 2L^2 d = 8Ld^2 + 4L^2 d
    FFN       = two 2 x L x d x 4d products                                  = 16Ld^2
    ratio     = attention / FFN = 1/2 + L / (4d)
    share     = attention / (attention + FFN)
"""

from __future__ import annotations

from ..units import Quantity


def idealized_layer_flops(seq_len: Quantity, hidden_size: Quantity) -> tuple[Quantity, Quantity]:
    """(attention FLOPs, FFN FLOPs) of the chapter's idealized layer over ``seq_len`` tokens."""
    length, d = seq_len, hidden_size
    attention = 8 * length * d * d + 4 * length * length * d
    ffn = 16 * length * d * d
    return attention, ffn


def idealized_ratio(seq_len: Quantity, hidden_size: Quantity) -> Quantity:
    """Attention / FFN FLOPs of the idealized layer: 1/2 + L / (4d)."""
    return 0.5 + seq_len / (4 * hidden_size)


def idealized_share(seq_len: Quantity, hidden_size: Quantity) -> Quantity:
    """Attention / (attention + FFN) FLOPs of the idealized layer."""
    attention, ffn = idealized_layer_flops(seq_len, hidden_size)
    return attention / (attention + ffn)
