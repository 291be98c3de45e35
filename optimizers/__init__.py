"""Built-in optimizer plugins: ``adam`` and ``muon``.

``optimizers.adam`` / ``optimizers.muon`` hold the optax transformations (Muon's
Newton-Schulz iteration is in ``optimizers.newton_schulz``, its Muon/Adam parameter grouping in
``optimizers.muon_grouping``); the ``*_plugin`` modules are the entry points (cheap to import:
no jax/optax at module level).
"""
