-- The quarantine: every rejected export row with its reasons and its original fields as text
-- (malformed CSV rows: fields placed by position, and the row's raw text in raw_text).
-- grain: one row per quarantined export row
-- key: source_row
-- reads: int_rejected_evaluations, raw_export, malformed_rows
with

well_formed as (
    select
        int_rejected_evaluations.source_row,
        int_rejected_evaluations.reasons,
        raw_export.* exclude (raw_export.source_row),
    from int_rejected_evaluations
    inner join raw_export on int_rejected_evaluations.source_row = raw_export.source_row
),

malformed as (
    select
        int_rejected_evaluations.source_row,
        int_rejected_evaluations.reasons,
        malformed_rows.* exclude (malformed_rows.source_row),
    from int_rejected_evaluations
    inner join malformed_rows on int_rejected_evaluations.source_row = malformed_rows.source_row
),

final as (
    select * from well_formed
    union all by name
    select * from malformed
)

select * from final
