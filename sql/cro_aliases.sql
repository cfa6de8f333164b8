-- The ballot as a matching table: every name and alias of a configured CRO, keyed as exports are matched.
-- grain: one row per distinct spelling key
-- key: cro_key
-- reads: ballot (spelling, cro: from the survey year's `cros`)
-- params: $whitespace (the characters trimmed around a field)
with

keyed as (
    select distinct
        lower(trim(spelling, $whitespace)) as cro_key,
        cro,
    from ballot
),

final as (
    select * from keyed
)

select * from final
