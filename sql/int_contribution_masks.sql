-- int_contributions as a draft keeps it (cro_awards.disclosure.guard): without its source rows, the 128-bit mask of
-- counted attributes as two unsigned 64-bit words (mask_0: bits 0-63; mask_1: bits 64-127, which the
-- draft leaves out in a year of at most 64 attributes).
-- grain: one row per accepted evaluation with at least one counted rating
-- key: respondent_id, cro
with

final as (
    select
        respondent_id,
        cro,
        segment,
        (attribute_mask & 18446744073709551615::uhugeint)::ubigint as mask_0,
        (attribute_mask >> 64)::ubigint as mask_1,
    from int_contributions
)

select * from final
