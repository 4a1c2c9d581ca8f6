-- title: IOP retention curve
-- summary: >
--   The share of IOP clients still in treatment on each day after admission, by how they came to IOP and by
--   track.
-- description: >
--   Kaplan-Meier share of IOP episodes still retained (not dropped out) by day since admission, for IOP
--   episodes admitted in the start..end range (by IOP admit date), by entry route (step-down from
--   residential or direct) and track. Completed and transferred discharges and episodes still open at
--   as_of are censored, not counted as dropouts.
-- definition: |
--   Population: IOP episodes at the selected sites admitted from start to end and on or before as_of.
--   Duration: discharge_date - admit_date, or as_of - admit_date when the episode is open or discharged
--   after as_of. Dropout (event): discharged on or before as_of with a reason other than completed or
--   transferred (left against advice, administrative, incarcerated, deceased, other). Censored at
--   discharge: completed or transferred; censored at as_of: still enrolled.
--   Entry route stepdown: the same client has a residential episode (any site) discharged 0-14 days
--   before the IOP admit date; otherwise direct. Track: "unknown" when empty.
--   For each group and day t from 0 to the smaller of max_day and the group's longest duration:
--   at_risk = episodes with duration >= t, dropouts = events with duration = t,
--   retained = product over days s <= t of (1 - dropouts_s / at_risk_s) (Kaplan-Meier; events at t
--   count before censorings at t). One row per day; curve is "entry_route, track" for charting.
--   Standard: Kaplan-Meier product-limit estimator of retention in treatment. Differences: retention is
--   episode-based (a readmission is a new episode), days are whole calendar days.
-- params:
--   max_day: {type: int, default: 120, label: Days since admission}
--   as_of: {type: date, default: data_through, label: As of}
-- page: retention
-- order: 10
-- panel:
--   title: Retention in IOP by entry route and track (Kaplan–Meier)
--   empty: No IOP admissions match these filters.
--   n_at: {day: 0}
-- chart:
--   kind: curves
--   x: day
--   y: retained
--   n: at_risk
--   color: curve
--   marks: [30, 60, 90]
--   y_label: Not dropped out
--   x_label: Days since admission
-- suppress:
--   keys: [day]
--   counts: [at_risk, dropouts]
--   stats:
--     retained: at_risk
--   curve: {by: [entry_route, track], x: day, at_risk: at_risk, events: dropouts, estimate: retained}

with

-- iop_episodes: each IOP episode with its attributes and is_stepdown (the client had a residential discharge
-- from 14 days before admission to the admission day)
routed as (
    select
        case when is_stepdown then 'stepdown' else 'direct' end as entry_route,
        coalesce(track, 'unknown') as track,
        case when discharge_date <= $as_of then discharge_date else $as_of end - admit_date as duration,
        coalesce(
            discharge_date <= $as_of and discharge_reason not in ('completed', 'transferred'), false
        ) as dropped
    from filtered(iop_episodes, $filters, tracks := $tracks)
    where
        admit_date <= $as_of
        and ($start is null or admit_date >= $start)
        and ($end is null or admit_date <= $end)
),

groups as (
    select entry_route, track, count(*) as episodes, max(duration) as last_day
    from routed
    group by entry_route, track
),

exits as (
    select
        entry_route,
        track,
        duration as day,
        count(*) as leaving,
        count(*) filter (where dropped) as dropouts
    from routed
    group by entry_route, track, duration
),

-- beyond the longest duration nobody is at risk and the curve is undefined
grid as (
    select entry_route, track, episodes, unnest(generate_series(0, least(last_day, $max_day))) as day
    from groups
),

daily as (
    select
        g.entry_route,
        g.track,
        g.day,
        (g.episodes - coalesce(sum(coalesce(x.leaving, 0)) over (
            partition by g.entry_route, g.track order by g.day
            rows between unbounded preceding and 1 preceding
        ), 0))::bigint as at_risk,
        coalesce(x.dropouts, 0) as dropouts
    from grid as g
    left join exits as x on g.entry_route = x.entry_route and g.track = x.track and g.day = x.day
),

-- product of (1 - d/n) as exp(sum(ln(...))); a factor of 0 (everyone at risk drops out) has no log,
-- so it is tracked separately and forces the curve to 0 from that day on
survival as (
    select
        entry_route,
        track,
        day,
        at_risk,
        dropouts,
        max(case when dropouts > 0 and dropouts = at_risk then 1 else 0 end) over cumulative as hit_zero,
        sum(case when dropouts > 0 and dropouts < at_risk then ln(1 - dropouts / at_risk) else 0 end)
            over cumulative as log_retained
    from daily
    window cumulative as (
        partition by entry_route, track order by day rows between unbounded preceding and current row
    )
),

final as (
    select
        entry_route,
        track,
        entry_route || ', ' || track as curve,
        day,
        at_risk,
        dropouts,
        case when hit_zero = 1 then 0.0 else exp(log_retained) end as retained
    from survival
)

select * from final
order by entry_route, track, day
