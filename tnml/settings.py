"""Library-wide limits, adjustable at run time (``tnml.settings.max_dense_bytes = 8 * 2**30``)."""

#: largest dense tensor (in bytes) that ``to_dense`` and other densifying routines will allocate
max_dense_bytes: int = 2**30


class MemoryLimitError(MemoryError, ValueError):
    """Raised before allocating something larger than a documented limit; the message says how to proceed."""
