-- Check: every row read (well-formed or malformed) is accepted or quarantined, and none is both.
-- grain: one row when read <> accepted + quarantined or a row is both (none when the check passes)
with

counts as (
    select
        (select count(*) from raw_export) + (select count(*) from malformed_rows) as n_read,
        (select count(*) from int_accepted_evaluations) as n_accepted,
        (select count(*) from int_rejected_evaluations) as n_quarantined,
        (
            select count(*)
            from int_accepted_evaluations
            semi join int_rejected_evaluations
                on int_accepted_evaluations.source_row = int_rejected_evaluations.source_row
        ) as n_both
)

select counts.*
from counts
where counts.n_read <> counts.n_accepted + counts.n_quarantined or counts.n_both > 0
