-- Accounting of the countable-cells rule (the manifest's not_counted): per segment, the cells rated by
-- fewer than min_cell_size respondents and their ratings, which count in no published number.
-- grain: one row per segment (big_pharma, small_pharma), zeros included
-- key: segment
with

segments as (
    select listed.segment
    from (values ('big_pharma'), ('small_pharma')) as listed (segment)
),

final as (
    select
        segments.segment,
        count(int_rating_cells.cro) as cells,
        coalesce(sum(int_rating_cells.n_ratings), 0)::bigint as ratings,
    from segments
    left join int_rating_cells
        on segments.segment = int_rating_cells.segment
        and not int_rating_cells.is_countable
    group by segments.segment
)

select * from final
