"""Where jobs run: the worker side's context, and worker processes."""
