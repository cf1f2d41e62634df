"""Models that ship with docvlm: the learned reader's candidate scorer (``scorer/``)."""
