"""Built-in environment families, one package or module each (registered in ``toolgym.registry``)."""
