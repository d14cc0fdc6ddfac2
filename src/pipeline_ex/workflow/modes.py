"""The run modes, in a module of their own: the Runtime checks its mode when it starts,
long before (and often without) importing the engine."""

MODES = ("mock", "live")
