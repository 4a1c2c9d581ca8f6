-- title: IOP initiation and engagement
-- summary: >
--   Of clients starting IOP, the share who attended a first session within two weeks and the share who kept
--   coming after it.
-- description: >
--   Of new IOP episodes admitted in the start..end range (by IOP admit date), the share that
--   initiated (an attended session on days 0-13 after admission) and engaged (attended sessions on at
--   least 2 more days within 34 days of the initiation session). Episodes are split into stratum
--   "new" (no IOP or residential care in the 194 days before) and "stepdown" (a residential discharge
--   0-14 days before); episodes fitting neither, and episodes admitted less than 47 days before as_of,
--   are excluded.
-- definition: |
--   Population: IOP episodes at the selected sites admitted from start to end, with admit_date + 47 <= as_of
--   (so both the 14-day initiation window and the following 34-day engagement window are complete).
--   Stratum stepdown: the same client has a residential episode (any site) discharged 0-14 days before the
--   IOP admit date (discharge_date between admit_date - 14 and admit_date).
--   Stratum new: the same client has no other IOP or residential episode (any site) overlapping the
--   194-day lookback admit_date - 194 .. admit_date - 1, i.e. admitted on or before admit_date - 1 and
--   not discharged before admit_date - 194 (an episode admitted or discharged in the lookback, or
--   spanning it, disqualifies). An episode that is both (only possible when the residential stay began
--   on the IOP admit date) is stepdown. Episodes that are neither are excluded.
--   Initiation: an attended session of the episode dated admit_date .. admit_date + 13; the first such
--   date is the initiation date. Engagement: attended sessions of the same episode on at least 2
--   distinct dates from initiation date + 1 to initiation date + 34. Rates are over new_episodes.
--   Grouped by stratum and calendar month of IOP admission.
--   Standard: adapted from HEDIS MY2025 Initiation and Engagement of Substance Use Disorder Treatment
--   (IET): same 194-day negative history, 14-day initiation and 34-day engagement windows. Differences:
--   the index event is an IOP admission rather than an SUD diagnosis from any setting; only attended
--   IOP sessions of the episode count (no medication events, no other providers); history looks only at
--   IOP and residential episodes; the residential step-down stratum is ours; no age or enrollment
--   criteria; engagement counts distinct session dates (two sessions on one day count once).
-- area: engagement
-- params:
--   as_of: {type: date, default: data_through, label: As of}
-- chart: {kind: rate_lines, x: month, y: engagement_rate, color: stratum, n: new_episodes}
-- suppress:
--   counts: [new_episodes, initiated, engaged]
--   rates:
--     initiation_rate: [initiated, new_episodes]
--     engagement_rate: [engaged, new_episodes]
--   totals:
--     initiated: [engaged, ~initiated_not_engaged]

with

-- iop_episodes: one row per IOP episode with its attributes, is_stepdown (a residential discharge from 14
-- days before admission to the admission day), has_recent_care (another IOP or residential episode open in
-- the 194 days before admission; overlap rather than "admitted or discharged in the lookback": a stay
-- spanning the whole lookback is also recent care), initiation_date (first attended day up to admission + 13)
-- and engaged (two or more other attended days from initiation + 1 to initiation + 34)
stratified as (
    select
        admit_date,
        case when is_stepdown then 'stepdown' else 'new' end as stratum,
        initiation_date,
        engaged
    from filtered(iop_episodes, $filters, tracks := $tracks)
    where
        admit_date + 47 <= $as_of
        and ($start is null or admit_date >= $start)
        and ($end is null or admit_date <= $end)
        and (is_stepdown or not has_recent_care)
),

monthly as (
    select
        stratum,
        date_trunc('month', admit_date)::date as month,
        count(*) as new_episodes,
        count(initiation_date) as initiated,
        count(*) filter (where engaged) as engaged
    from stratified
    group by 1, 2
),

final as (
    select
        stratum,
        month,
        new_episodes,
        initiated,
        engaged,
        initiated / new_episodes as initiation_rate,
        engaged / new_episodes as engagement_rate
    from monthly
)

select * from final
order by stratum, month
