"""The benchmark at scale and its plain-pandas baseline."""
