-- The accepted evaluations, each with the segment its R&D spend puts it in (big_pharma when
-- rd_spend_musd >= the cut, else small_pharma). The comparison is exact (decimal), so
-- 999.99999999999999999 is below a cut of 1000; a spend too long for a decimal (over 20 integer
-- digits) is compared as a double, which cannot misjudge it. respondent_rank numbers the respondents in
-- respondent_id order (for the bootstrap: an order that the export's row order cannot change).
-- grain: one row per accepted export row
-- key: source_row
-- params: $big_pharma_min_rd_spend_musd
with

accepted as (
    select
        int_evaluations.source_row,
        int_evaluations.respondent_id,
        int_evaluations.cro,
        int_evaluations.rd_spend_musd,
        int_evaluations.rd_spend_musd_exact,
    from int_evaluations
    anti join int_rejected_evaluations on int_evaluations.source_row = int_rejected_evaluations.source_row
),

final as (
    select
        source_row,
        respondent_id,
        cro,
        case
            when coalesce(
                rd_spend_musd_exact >= cast($big_pharma_min_rd_spend_musd as decimal(38, 18)),
                rd_spend_musd >= cast($big_pharma_min_rd_spend_musd as double)
            ) then 'big_pharma'
            else 'small_pharma'
        end as segment,
        dense_rank() over (order by respondent_id) as respondent_rank,
    from accepted
)

select * from final
