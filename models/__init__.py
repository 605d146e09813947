"""Executable models: deliberately simple oracles, the whole-cluster model, and the explorer.

Models import `spec`; they are written differently from it on purpose (slower, plainer), so that
agreement between the two means something.
"""
