-- title: IOP retention at a given day (Overview tile)
-- summary: >
--   The share of IOP clients still in treatment 90 days after admission.
-- description: >
--   Kaplan-Meier share of IOP episodes not dropped out by day `day` after admission, for IOP episodes
--   admitted in the start..end range (by IOP admit date): one row for the whole range (grain period, the
--   Overview tile) or one per admission month (grain month). Completed and transferred discharges and
--   episodes still open at as_of are censored, not counted as dropouts, exactly as in iop_retention.
-- definition: |
--   Population: IOP episodes at the selected sites admitted from start to end and on or before as_of.
--   Duration: discharge_date - admit_date, or as_of - admit_date when the episode is open or discharged
--   after as_of. Dropout: discharged on or before as_of with a reason other than completed or
--   transferred. Censored: completed or transferred discharges, and episodes open at as_of.
--   retained = product over days t from 0 to `day` of (1 - dropouts_t / at_risk_t), at_risk_t =
--   episodes with duration >= t: the Kaplan-Meier estimate of iop_retention on day `day`, over all entry
--   routes and tracks together. admissions: the population; at_risk: episodes with duration >= `day`;
--   dropouts: dropouts on days 0..day. retained is empty when nobody is at risk on `day`.
--   Rows: grain period gives one row for the whole start..end range (month empty), what the Overview tile
--   shows; grain month gives one row per calendar month of admission; grain periods gives one row per period
--   for the tile's trend line: period_starts holds the first day of each period, an episode falls in the
--   period with the latest start on or before its admit date, episodes admitted before the earliest start
--   are left out, and month holds the period's first day. Each period's row equals the grain period row for
--   its dates.
-- area: overview
-- params:
--   grain: {type: choice, choices: [period, month, periods], default: period, label: Rows}
--   period_starts: {type: dates, label: Period starts (grain periods)}
--   day: {type: int, default: 90, label: Days since admission}
--   as_of: {type: date, default: data_through, label: As of}
-- chart: {kind: rate_lines, x: month, y: retained, n: at_risk}
-- suppress:
--   counts: [admissions, at_risk, dropouts]
--   totals:
--     admissions: [at_risk, ~left_before_day]
--   stats:
--     retained: [at_risk, dropouts]

with

iop_episodes as (
    select
        case
            when $grain = 'month' then date_trunc('month', admit_date)::date
            when $grain = 'periods' then list_max(list_filter($period_starts, lambda p: p <= admit_date))
        end as month,
        case when discharge_date <= $as_of then discharge_date else $as_of end - admit_date as duration,
        coalesce(
            discharge_date <= $as_of and discharge_reason not in ('completed', 'transferred'), false
        ) as dropped
    from filtered(episodes, $filters, tracks := $tracks)
    where
        level_of_care = 'iop'
        and admit_date <= $as_of
        and ($start is null or admit_date >= $start)
        and ($end is null or admit_date <= $end)
        and ($grain <> 'periods' or admit_date >= list_min($period_starts))
),

cohorts as (
    select
        month,
        count(*) as admissions,
        count(*) filter (where duration >= $day) as at_risk,
        count(*) filter (where dropped and duration <= $day) as dropouts
    from iop_episodes
    group by month
),

event_days as (
    select month, duration as day, count(*) as dropouts
    from iop_episodes
    where dropped and duration <= $day
    group by month, duration
),

durations as (
    select month, duration, count(*) as episodes
    from iop_episodes
    group by month, duration
),

-- one Kaplan-Meier factor per day with a dropout, its at-risk count summed over the durations from that day
-- on; month is empty for grain period, hence "not distinct"
factors as (
    select
        e.month,
        1 - e.dropouts / sum(d.episodes) as factor
    from event_days as e
    inner join durations as d
        on e.month is not distinct from d.month
        and e.day <= d.duration
    group by e.month, e.day, e.dropouts
),

survival as (
    select month, product(factor) as retained
    from factors
    group by month
),

final as (
    select
        c.month,
        c.admissions,
        c.at_risk,
        c.dropouts,
        case when c.at_risk > 0 then coalesce(s.retained, 1.0) end as retained
    from cohorts as c
    left join survival as s on c.month is not distinct from s.month
)

select * from final
order by month
