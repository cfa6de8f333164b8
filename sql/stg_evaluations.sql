-- Staging: one export row as the contract reads it: fields trimmed, blanks null, values cast leniently.
-- Casting here is lenient on purpose (TRY_CAST); the strict parsing rules are expectations in
-- expectations/evaluations.json, which judge the `_text` columns.
-- grain: one row per well-formed export row
-- key: source_row
-- reads: raw_evaluations (source_row, respondent_id, rd_spend_musd, cro, last_engaged as text),
--        cro_aliases (cro_key, cro), stg_ratings
-- params: $whitespace (the characters trimmed around a field)
with

raw_evaluations as (
    select
        source_row,
        nullif(trim(respondent_id, $whitespace), '') as respondent_id,
        nullif(trim(rd_spend_musd, $whitespace), '') as rd_spend_musd_text,
        nullif(trim(cro, $whitespace), '') as cro_text,
        nullif(trim(last_engaged, $whitespace), '') as last_engaged_text,
    from raw_evaluations
),

answers as (
    select
        source_row,
        count(*) as n_answered,
    from stg_ratings
    group by source_row
),

final as (
    select
        raw_evaluations.source_row,
        raw_evaluations.respondent_id,
        raw_evaluations.rd_spend_musd_text,
        try_cast(raw_evaluations.rd_spend_musd_text as double) as rd_spend_musd,
        -- exact for the segment cut: digits beyond the 18th decimal are cut off (truncation keeps >= exact)
        try_cast(
            regexp_extract(raw_evaluations.rd_spend_musd_text, '^[0-9]{1,20}(\.[0-9]{1,18})?') as decimal(38, 18)
        ) as rd_spend_musd_exact,
        raw_evaluations.cro_text,
        lower(raw_evaluations.cro_text) as cro_key,
        cro_aliases.cro,
        raw_evaluations.last_engaged_text,
        try_cast(raw_evaluations.last_engaged_text as date) as last_engaged_on,
        coalesce(answers.n_answered, 0) as n_answered,
    from raw_evaluations
    left join cro_aliases on lower(raw_evaluations.cro_text) = cro_aliases.cro_key
    left join answers on raw_evaluations.source_row = answers.source_row
)

select * from final
