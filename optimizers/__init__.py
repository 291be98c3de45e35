"""Built-in optimizer plugins: ``adam`` and ``muon``.

``optimizers.adam`` / ``optimizers.muon`` hold the optax transformations; the
``*_plugin`` modules are the entry points (cheap to import: no jax/optax at module level).
"""
