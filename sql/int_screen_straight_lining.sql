-- The rows the straight-lining screen sets aside (straight_lining): each evaluation whose count of valid
-- ratings, all equal, validation rejected (expectations/screen_straight_lining.json judges each distinct
-- n_equal_ratings of int_equal_ratings once, and binds the counts it rejected). Per evaluation: not
-- carried to the respondent's other rows.
-- grain: one row per well-formed export row set aside by the straight-lining screen
-- key: source_row
-- params: $straight_lining_counts (the values of n_equal_ratings that validation rejected)
with

final as (
    select
        source_row,
        'straight_lining' as reason,
    from int_equal_ratings
    where n_equal_ratings in (select unnest($straight_lining_counts))
)

select * from final
