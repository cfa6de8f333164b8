-- For the straight-lining screen (only for a year whose YAML configures screens.straight_lining): the
-- evaluations whose valid ratings (answered, and not rejected by validation: int_invalid_ratings) are all
-- the same value (4, 04 and 4.0 are one value), with how many there are. Validation judges the distinct
-- counts (expectations/screen_straight_lining.json) and int_screen_straight_lining maps the verdicts back
-- to the rows; an evaluation whose valid ratings differ, or that has none, is not straight-lining
-- whatever its count, and has no row. An evaluation without an invalid rating is read from
-- int_evaluations (its answers are its valid ratings: the lowest equals the highest); only those with
-- one are counted again from their ratings.
-- grain: one row per well-formed export row with at least one valid rating, all of them equal
-- key: source_row
with

invalid_fields as (
    select
        source_row,
        unnest(attributes) as invalid_attribute,
    from int_invalid_ratings
),

all_valid as (
    select
        int_evaluations.source_row,
        int_evaluations.n_answered as n_equal_ratings,
    from int_evaluations
    anti join int_invalid_ratings on int_evaluations.source_row = int_invalid_ratings.source_row
    where int_evaluations.min_rating_value = int_evaluations.max_rating_value
),

recounted as (
    select
        stg_ratings.source_row,
        count(*) as n_equal_ratings,
    from stg_ratings
    semi join int_invalid_ratings on stg_ratings.source_row = int_invalid_ratings.source_row
    anti join invalid_fields
        on stg_ratings.source_row = invalid_fields.source_row
        and stg_ratings.attribute = invalid_fields.invalid_attribute
    group by stg_ratings.source_row
    having min(stg_ratings.rating_value) = max(stg_ratings.rating_value)
),

final as (
    select * from all_valid
    union all
    select * from recounted
)

select * from final
