-- For the qualification screen: the allowed answers of the YAML (screens.qualification.allowed) in the
-- form a qualification field is compared in (lower(identity_key(...)), like stg_qualification_texts).
-- grain: one row per distinct allowed answer, as compared
-- key: allowed_key
-- params: $qualification_allowed (the YAML's allowed answers, as written)
with

final as (
    select distinct lower(identity_key(allowed)) as allowed_key
    from unnest($qualification_allowed::varchar[]) as allowed_values (allowed)
)

select * from final
