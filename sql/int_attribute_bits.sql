-- Each attribute's bit in the 128-bit masks of counted attributes (int_contributions): attributes in
-- code-point order of their ids, from bit 0. A year has at most 128 attributes (the configuration checks).
-- grain: one row per attribute of the year
-- key: attribute
with

final as (
    select
        attribute,
        (row_number() over (order by attribute) - 1)::uhugeint as attribute_bit,
    from attribute_labels
)

select * from final
