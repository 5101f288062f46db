"""JavisDiT v0.1 in plain torch: the DiT, its prior, text encoder and decoders."""
