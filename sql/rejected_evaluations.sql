-- The quarantine: every rejected export row with its reasons, the fields behind each reason (a map from
-- each reason code, in the reasons' order, to the export columns that caused it, named as `fields`
-- names them, in header order; int_rejected_reason_fields), the raw CSV text of a malformed row (null
-- otherwise) and its fields as written: a map from each export column's name (as the header writes it,
-- after `columns`; case kept) to the row's text, in header order. The export's fields are kept apart
-- from the quarantine's own columns, so a column named source_row, reasons or raw_text, or two names
-- differing only in case, overwrite nothing. Malformed rows' fields are placed by position (absent ones
-- null). (`fields` is a keyword to sqlfluff, hence its noqa: it is the contract's column name.)
-- grain: one row per quarantined export row
-- key: source_row
with

rejected_rows as (
    select
        raw_export.*,
        null::varchar as raw_text,
    from raw_export
    semi join int_rejected_evaluations on raw_export.source_row = int_rejected_evaluations.source_row
    union all by name
    select malformed_rows.*,
    from malformed_rows
    semi join int_rejected_evaluations on malformed_rows.source_row = int_rejected_evaluations.source_row
),

long_fields as (
    from rejected_rows
    unpivot include nulls (field_text for field in (columns(* exclude (source_row, raw_text))))
),

field_maps as (
    select
        long_fields.source_row,
        map_from_entries(
            list((export_columns.column_name, long_fields.field_text) order by export_columns.position)
        ) as fields,  -- noqa: RF04
    from long_fields
    inner join export_columns on long_fields.field = export_columns.field
    group by long_fields.source_row
),

reason_field_maps as (
    select
        source_row,
        map_from_entries(list((reason, column_names) order by reason_order)) as reason_fields,
    from int_rejected_reason_fields
    group by source_row
),

final as (
    select
        int_rejected_evaluations.source_row,
        int_rejected_evaluations.reasons,
        reason_field_maps.reason_fields,
        rejected_rows.raw_text,
        field_maps.fields,
    from int_rejected_evaluations
    inner join rejected_rows on int_rejected_evaluations.source_row = rejected_rows.source_row
    inner join reason_field_maps on int_rejected_evaluations.source_row = reason_field_maps.source_row
    inner join field_maps on int_rejected_evaluations.source_row = field_maps.source_row
)

select * from final
