-- The ballot as a matching table: every name and alias of a configured CRO, keyed as exports are matched
-- (identity_key: NFKC, format characters removed, whitespace trimmed; cro_awards/engine/identity.py; lower case).
-- grain: one row per distinct spelling key
-- key: cro_key
with

keyed as (
    select distinct
        lower(identity_key(spelling)) as cro_key,
        cro,
    from ballot
),

final as (
    select * from keyed
)

select * from final
