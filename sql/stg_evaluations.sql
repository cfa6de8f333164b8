-- Staging: one export row's contract fields, renamed and cast: trimmed, blanks null, values cast leniently.
-- Casting here is lenient (TRY_CAST); the parsing rules are expectations in expectations/evaluations.json,
-- which judge the `_text` columns (on int_evaluations). A date is cast only from well-formed text, so that
-- no date is read from a text the rules reject. Identifiers (respondent_id, cro_text) are read as identities
-- (identity_key: NFKC, format characters removed, whitespace trimmed; computed once per distinct text and
-- looked up, as stg_ratings looks up its casts); cro_key is cro_text lower-cased, as
-- the ballot is matched.
-- grain: one row per well-formed export row
-- key: source_row
-- params: $whitespace (the characters trimmed around a field)
with

-- identity_key runs in Python (over Arrow): once per distinct text, not once per row
respondent_identities as (
    select
        distinct_ids.respondent_id,
        identity_key(distinct_ids.respondent_id) as respondent_identity,
    from (select distinct raw_evaluations.respondent_id from raw_evaluations) as distinct_ids
),

cro_identities as (
    select
        distinct_cros.cro,
        identity_key(distinct_cros.cro) as cro_identity,
    from (select distinct raw_evaluations.cro from raw_evaluations) as distinct_cros
),

trimmed as (
    select
        raw_evaluations.source_row,
        respondent_identities.respondent_identity as respondent_id,
        nullif(trim(raw_evaluations.rd_spend_musd, $whitespace), '') as rd_spend_musd_text,
        cro_identities.cro_identity as cro_text,
        nullif(trim(raw_evaluations.last_engaged, $whitespace), '') as last_engaged_text,
    from raw_evaluations
    left join respondent_identities on raw_evaluations.respondent_id = respondent_identities.respondent_id
    left join cro_identities on raw_evaluations.cro = cro_identities.cro
),

final as (
    select
        trimmed.source_row,
        trimmed.respondent_id,
        trimmed.rd_spend_musd_text,
        try_cast(trimmed.rd_spend_musd_text as double) as rd_spend_musd,
        -- exact, for the segment cut: leading zeros dropped, decimals beyond the 18th cut off (truncation
        -- keeps >= exact); null when the integer part has more than 20 digits (the double then decides)
        case
            when length(ltrim(split_part(trimmed.rd_spend_musd_text, '.', 1), '0')) <= 20
                then try_cast(
                    coalesce(nullif(ltrim(split_part(trimmed.rd_spend_musd_text, '.', 1), '0'), ''), '0')
                    || '.'
                    || coalesce(nullif(left(split_part(trimmed.rd_spend_musd_text, '.', 2), 18), ''), '0')
                    as decimal(38, 18)
                )
        end as rd_spend_musd_exact,
        trimmed.cro_text,
        lower(trimmed.cro_text) as cro_key,
        trimmed.last_engaged_text,
        -- a date only where the text is written YYYY-MM-DD and names a year after 0 (DuckDB's cast would
        -- read 2024-2-3, 2023/01/05 and 0000-01-01 too), so the window is judged on real dates alone
        case
            when
                regexp_full_match(trimmed.last_engaged_text, '[0-9]{4}-[0-9]{2}-[0-9]{2}')
                and not starts_with(trimmed.last_engaged_text, '0000')
                then try_cast(trimmed.last_engaged_text as date)
        end as last_engaged_on,
    from trimmed
)

select * from final
