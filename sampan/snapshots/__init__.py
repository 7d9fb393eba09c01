"""The layer store (`LayerStore`): unpacked image layers by chain ID, for overlay lower dirs."""

from .layers import Compressed, Layer, LayerStore, chain_id, chain_ids

__all__ = ["Compressed", "Layer", "LayerStore", "chain_id", "chain_ids"]
