-- title: IOP initiation and engagement
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
--   start: {type: date, label: Admitted from}
--   end: {type: date, label: Admitted to}
--   sites: filter
--   payers: filter
--   genders: filter
--   age_bands: filter
--   substances: filter
--   co_occurring: filter
--   living: filter
--   employment: filter
--   tracks: filter
-- chart: {kind: line, x: month, y: engagement_rate, color: stratum, n: new_episodes}
-- suppress:
--   counts: [new_episodes, initiated, engaged]
--   rates:
--     initiation_rate: [initiated, new_episodes]
--     engagement_rate: [engaged, new_episodes]
--   totals:
--     initiated: [engaged, ~initiated_not_engaged]

with

index_episodes as (
    select episode_id, client_id, admit_date
    from filtered_episodes(
        sites := $sites, payers := $payers, genders := $genders, age_bands := $age_bands,
        substances := $substances, co_occurring := $co_occurring, living := $living,
        employments := $employment, tracks := $tracks
    )
    where
        level_of_care = 'iop'
        and admit_date + 47 <= $as_of
        and ($start is null or admit_date >= $start)
        and ($end is null or admit_date <= $end)
),

stepdowns as (
    select distinct i.episode_id
    from index_episodes as i
    inner join enrollments as r
        on i.client_id = r.client_id
        and r.level_of_care = 'residential'
        and r.discharge_date between i.admit_date - 14 and i.admit_date
),

-- overlap rather than "admitted or discharged in the lookback": a stay spanning the whole
-- lookback is also recent care
recent_care as (
    select distinct i.episode_id
    from index_episodes as i
    inner join enrollments as o
        on i.client_id = o.client_id
        and i.episode_id <> o.episode_id
        and o.level_of_care in ('iop', 'residential')
        and o.admit_date <= i.admit_date - 1
        and (o.discharge_date is null or o.discharge_date >= i.admit_date - 194)
),

stratified as (
    select
        i.episode_id,
        i.admit_date,
        case when s.episode_id is not null then 'stepdown' else 'new' end as stratum
    from index_episodes as i
    left join stepdowns as s on i.episode_id = s.episode_id
    left join recent_care as c on i.episode_id = c.episode_id
    where s.episode_id is not null or c.episode_id is null
),

attended_days as (
    select distinct a.episode_id, a.session_date
    from attendance as a
    inner join stratified as s on a.episode_id = s.episode_id
    where a.status = 'attended' and a.session_date >= s.admit_date
),

initiations as (
    select s.episode_id, min(d.session_date) as initiation_date
    from stratified as s
    inner join attended_days as d
        on s.episode_id = d.episode_id
        and d.session_date <= s.admit_date + 13
    group by s.episode_id
),

engagements as (
    select i.episode_id
    from initiations as i
    inner join attended_days as d
        on i.episode_id = d.episode_id
        and d.session_date between i.initiation_date + 1 and i.initiation_date + 34
    group by i.episode_id
    having count(*) >= 2
),

monthly as (
    select
        s.stratum,
        date_trunc('month', s.admit_date)::date as month,
        count(*) as new_episodes,
        count(i.episode_id) as initiated,
        count(e.episode_id) as engaged
    from stratified as s
    left join initiations as i on s.episode_id = i.episode_id
    left join engagements as e on s.episode_id = e.episode_id
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
