"""The nouns and the one comparison: rights, identity, the model, the comparable spec. Pure, no I/O."""
