-- For the straight-lining screen (only for a year whose YAML configures screens.straight_lining): each
-- evaluation's valid ratings (answered, and not rejected by validation: int_invalid_ratings) counted, and
-- whether they are all the same value (4, 04 and 4.0 are one value). n_equal_ratings is that count when
-- they are all equal, else 0: validation judges its distinct values (expectations/
-- screen_straight_lining.json) and int_screen_straight_lining maps the verdicts back to the rows. An
-- evaluation without an invalid rating is read from int_evaluations (its answers are its valid ratings);
-- only those with one are counted again from their ratings.
-- grain: one row per well-formed export row
-- key: source_row
-- reads: int_evaluations, int_invalid_ratings, stg_ratings
with

invalid_fields as (
    select
        source_row,
        unnest(attributes) as invalid_attribute,
    from int_invalid_ratings
),

recounted as (
    select
        stg_ratings.source_row,
        count(*) as n_valid_ratings,
        min(stg_ratings.rating_value) = max(stg_ratings.rating_value) as is_all_equal,
    from stg_ratings
    semi join int_invalid_ratings on stg_ratings.source_row = int_invalid_ratings.source_row
    anti join invalid_fields
        on stg_ratings.source_row = invalid_fields.source_row
        and stg_ratings.attribute = invalid_fields.invalid_attribute
    group by stg_ratings.source_row
),

counted as (
    select
        int_evaluations.source_row,
        case
            when int_invalid_ratings.source_row is null then int_evaluations.n_answered
            else coalesce(recounted.n_valid_ratings, 0)
        end as n_valid_ratings,
        case
            when int_invalid_ratings.source_row is null
                then int_evaluations.min_rating_value = int_evaluations.max_rating_value
            else coalesce(recounted.is_all_equal, false)
        end as is_all_equal,
    from int_evaluations
    left join int_invalid_ratings on int_evaluations.source_row = int_invalid_ratings.source_row
    left join recounted on int_evaluations.source_row = recounted.source_row
),

final as (
    select
        source_row,
        n_valid_ratings,
        coalesce(is_all_equal, false) as is_all_equal,
        case when is_all_equal then n_valid_ratings else 0 end as n_equal_ratings,
    from counted
)

select * from final
