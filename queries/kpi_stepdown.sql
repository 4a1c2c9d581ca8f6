-- title: Step-down rate for a period (Overview tile)
-- description: >
--   Share of residential discharges in the start..end range followed by an attended IOP session within
--   window_days (day 0 = the discharge day): one row for the whole range (grain period, the Overview tile)
--   or one per calendar month of discharge (grain month). Same population and rule as stepdown_rate.
-- definition: |
--   Exactly the stepdown_rate definition: residential episodes discharged in start..end and on or before
--   as_of at the selected sites, less deaths, incarcerations, direct transfers (another residential or
--   withdrawal management admission on the discharge day or the next) and discharges whose window runs
--   past as_of. Numerator: an attended IOP session (any site) from the discharge date to discharge date +
--   window_days, both inclusive.
--   Rows: grain period gives one row for the whole start..end range (month empty), what the Overview tile
--   shows; grain month gives one row per calendar month of discharge, for its trend line.
-- area: overview
-- params:
--   grain: {type: choice, choices: [period, month], default: period, label: Rows}
--   window_days: {type: int, default: 14, label: Window (days)}
--   as_of: {type: date, default: data_through, label: As of}
--   start: {type: date, label: Discharged from}
--   end: {type: date, label: Discharged to}
--   sites: filter
--   payers: filter
--   genders: filter
--   age_bands: filter
--   substances: filter
--   co_occurring: filter
--   living: filter
--   employment: filter
-- chart: {kind: line, x: month, y: stepdown_rate, n: eligible_discharges}
-- suppress:
--   counts: [eligible_discharges, stepped_down]
--   rates:
--     stepdown_rate: [stepped_down, eligible_discharges]
--     ci_low: [stepped_down, eligible_discharges]
--     ci_high: [stepped_down, eligible_discharges]

with

index_population as (
    select episode_id
    from filtered_episodes(
        sites := $sites, payers := $payers, genders := $genders, age_bands := $age_bands,
        substances := $substances, co_occurring := $co_occurring, living := $living,
        employments := $employment
    )
    where level_of_care = 'residential'
),

eligible as (
    select
        case when $grain = 'month' then date_trunc('month', d.discharge_date)::date end as month,
        coalesce(d.days_to_iop <= $window_days, false) as stepped
    from residential_discharges as d
    inner join index_population as p on d.episode_id = p.episode_id
    where
        d.discharge_date <= $as_of
        and d.discharge_date + $window_days <= $as_of
        and not d.is_transfer
        and d.discharge_reason not in ('deceased', 'incarcerated')
        and ($start is null or d.discharge_date >= $start)
        and ($end is null or d.discharge_date <= $end)
),

counted as (
    select
        month,
        count(*) as eligible_discharges,
        count(*) filter (where stepped) as stepped_down
    from eligible
    group by month
),

final as (
    select
        month,
        eligible_discharges,
        stepped_down,
        stepped_down / eligible_discharges as stepdown_rate,
        wilson_low(stepped_down, eligible_discharges) as ci_low,
        wilson_high(stepped_down, eligible_discharges) as ci_high
    from counted
)

select * from final
order by month
