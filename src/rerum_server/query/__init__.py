"""MongoDB query filters for ``POST /v1/api/query``: parsed into a typed tree, compiled to PostgreSQL.

``parse_filter`` validates a client's filter document (raising ``BadRequest`` naming the offending operator);
``compile_filter`` turns the tree into a boolean SQL expression over the ``doc`` jsonb column with every
user-supplied string and value passed as a parameter. Both are pure: no I/O, no database driver.
See docs/query.md for the semantics and the documented differences from MongoDB.
"""

from rerum_server.query.compile import SqlFilter, compile_filter
from rerum_server.query.parse import Filter, parse_filter

__all__ = ["Filter", "SqlFilter", "compile_filter", "parse_filter"]
