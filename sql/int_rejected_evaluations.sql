-- Every quarantined export row with its reasons, in the contract's order of reason codes.
-- grain: one row per quarantined export row (well-formed or malformed)
-- key: source_row
with

reasons as (
    select distinct
        source_row,
        reason,
        reason_order,
    from rejection_reasons
),

final as (
    select
        source_row,
        list(reason order by reason_order) as reasons,
    from reasons
    group by source_row
)

select * from final
