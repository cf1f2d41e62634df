"""Inference engines: the runtimes (torch models, HTTP clients) that stages get from factories."""
