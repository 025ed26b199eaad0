"""capeval: image-captioning metrics with pycocoevalcap 1.2's numbers, without Java, many times faster."""

__version__ = "0.1.0"
