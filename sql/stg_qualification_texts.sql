-- Staging (only for a year whose YAML configures screens.qualification): every distinct text of the
-- qualification column, read once. A missing cell is read as the empty text. qualification_key is the
-- text as names are compared (identity_key: NFKC, format characters removed, whitespace trimmed;
-- cro_awards/engine/identity.py), lower-cased; null when blank. Validation judges the keys
-- (expectations/screen_qualification.json) and maps the verdicts back to the rows by qualification_field
-- (int_screen_qualification).
-- grain: one row per distinct qualification field, as written in the export (untrimmed)
-- key: qualification_field
with

fields as (
    select distinct coalesce(raw_qualifications.qualification, '') as qualification_field,
    from raw_qualifications
),

final as (
    select
        qualification_field,
        lower(identity_key(qualification_field)) as qualification_key,
    from fields
)

select * from final
