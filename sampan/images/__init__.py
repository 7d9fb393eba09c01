"""Images: `ImageService(config, db)` — import, load, save, list, inspect, history, tag, rmi, prune.

`resolve(ref) -> ImageRecord` gives a container what it needs (config, layer dirs top-most
first). Builders and commit use `add_layer(parent_chain, tar)` then `create_image(config)`.
"""

from .service import ImageRecord, ImageService, host_arch, parse_platform

__all__ = ["ImageRecord", "ImageService", "host_arch", "parse_platform"]
