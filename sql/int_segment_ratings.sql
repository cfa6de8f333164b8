-- The ratings that count: accepted evaluations' valid ratings, once per segment they belong to.
-- An evaluation is big_pharma when its rd_spend_musd >= the cut, else small_pharma, and always overall.
-- The comparison is exact (decimal), so 999.99999999999999999 is below a cut of 1000; a spend too long
-- for a decimal (over 20 integer digits) is compared as a double, which cannot misjudge it.
-- grain: one row per (segment, accepted evaluation, attribute answered)
-- key: segment, source_row, attribute
-- reads: stg_evaluations, stg_ratings, int_rejected_evaluations
-- params: $big_pharma_min_rd_spend_musd
with

accepted as (
    select
        stg_evaluations.source_row,
        stg_evaluations.cro,
        stg_evaluations.rd_spend_musd,
        stg_evaluations.rd_spend_musd_exact,
    from stg_evaluations
    anti join int_rejected_evaluations on stg_evaluations.source_row = int_rejected_evaluations.source_row
),

segmented as (
    select
        source_row,
        cro,
        case
            when coalesce(
                rd_spend_musd_exact >= cast($big_pharma_min_rd_spend_musd as decimal(38, 18)),
                rd_spend_musd >= cast($big_pharma_min_rd_spend_musd as double)
            ) then 'big_pharma'
            else 'small_pharma'
        end as segment,
    from accepted
    union all
    select
        source_row,
        cro,
        'overall' as segment,
    from accepted
),

final as (
    select
        segmented.segment,
        segmented.cro,
        segmented.source_row,
        stg_ratings.attribute,
        stg_ratings.rating_value,
    from segmented
    inner join stg_ratings on segmented.source_row = stg_ratings.source_row
)

select * from final
