"""Settings from the environment: the bottom layer, which every other package may read."""
