"""fgnet_core: the thin core of fgnet-workspace (FG-Net facial action unit detection)."""
__version__ = "0.1.0"
