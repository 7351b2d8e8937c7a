"""One screen a module, each with its .tcss beside it."""
