"""A RERUM v1 compatible object store on PostgreSQL, served by a cluster of worker processes."""

__version__ = "0.1.0"
