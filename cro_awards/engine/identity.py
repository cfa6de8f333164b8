"""How identifiers and names are compared: one definition, used in SQL and in Python alike.

Contract: `identity_key(texts)` maps each text to the form in which two spellings are the same
identity: Unicode NFKC (compatibility forms folded: full-width letters, ligatures, no-break and
ideographic spaces), format characters (Unicode category Cf: zero-width spaces and joiners, the byte
order mark, direction marks) removed, and surrounding whitespace (tab, line feed, vertical tab, form
feed, carriage return and every Unicode separator, category Z) trimmed; an empty result is null. It
does not change case: CRO spellings are matched on `lower(identity_key(text))`, respondent ids on
`identity_key(text)` as they are. `register(connection)` makes it the DuckDB function
`identity_key(varchar)` used by the SQL of `sql/` (vectorised over Arrow: C++ kernels, no Python loop).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

FORMAT_CHARACTERS = r"\p{Cf}"
SURROUNDING_WHITESPACE = r"^[\t\n\v\f\r\p{Z}]+|[\t\n\v\f\r\p{Z}]+$"


def identity_key(texts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """See the module contract; nulls stay null."""
    normal = pc.utf8_normalize(texts, "NFKC")
    normal = pc.replace_substring_regex(normal, FORMAT_CHARACTERS, "")
    normal = pc.replace_substring_regex(normal, SURROUNDING_WHITESPACE, "")
    return pc.if_else(pc.equal(normal, ""), pa.scalar(None, pa.string()), normal)


def register(connection) -> None:
    """Define `identity_key(varchar) -> varchar` on a DuckDB connection."""
    from duckdb.sqltypes import VARCHAR

    connection.create_function(
        "identity_key", identity_key, [VARCHAR], VARCHAR, type="arrow", null_handling="special", side_effects=False
    )
