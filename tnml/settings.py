"""Library-wide limits, adjustable at run time (``tnml.settings.max_dense_bytes = 8 * 2**30``)."""

#: largest allocation (in bytes) that a guarded routine makes before refusing with :class:`MemoryLimitError`:
#: dense coefficient tensors (``TNModel.to_dense``), the doubled-network contractions of the Gram spectrum route
#: (``tnml.entanglement.schmidt_values`` and friends on loopy networks or non-edge cuts), the M x M Gram matrices
#: of one batch of ``tnml.entanglement.data_entanglement`` (and ``side_gram``'s feature chunks), the matrices of
#: ``separation_rank``, and the data of an IDX file (``tnml.datasets.idx_io.load_idx``). Each refusal gives the
#: size needed and how to proceed (smaller batch / case, or raise this value).
max_dense_bytes: int = 2**30


class MemoryLimitError(MemoryError, ValueError):
    """Raised before allocating something larger than a documented limit; the message says how to proceed."""
