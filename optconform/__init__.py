"""optconform: does your optimizer compute what the canonical reference computes?

The package is laid out as the repository is:

- ``optconform.reference``: the canonical NumPy reference (the specification),
  its case catalogue, tolerances and the vector generator;
- ``optconform.vectors``: the golden vectors, their JSON Schema and the loader;
- ``optconform.harness``: targets, the wire protocol, comparison, diagnosis, reports.
"""

__version__ = "0.1.0"
