-- title: Time from residential discharge to first IOP session
-- summary: >
--   Of clients leaving residential care, the share who had attended their first IOP session by each day after
--   discharge, by how their stay ended.
-- description: >
--   Cumulative share of residential discharges with a first attended IOP session by each day 0..max_day
--   after discharge (day 0 = the discharge day), by discharge reason group, estimated Kaplan-Meier style
--   so that recent discharges count only for the days already observed by as_of. Same population as the
--   step-down rate: excludes deaths, incarcerations and direct transfers. start/end bound the discharge date.
-- definition: |
--   Population: residential episodes discharged on or before as_of, in the start..end discharge range,
--   at the selected sites, less discharge_reason deceased or incarcerated and direct transfers (another
--   residential or withdrawal management admission on the discharge day or the next), exactly as in
--   stepdown_rate but with no complete-window rule. reason_group: completed, left_against_advice, or
--   other (administrative, transferred, other).
--   Event: the first attended IOP session (any site) on or after the discharge date, on day
--   days_to_iop. Follow-up: as_of - discharge_date days; an event after as_of is not yet known, so that
--   discharge is censored at its follow-up instead.
--   at_risk(t): discharges with follow-up >= t and no event before day t. stepped_on_day(t): events on
--   day t. cumulative_share(t) = 1 - product over days s <= t of (1 - stepped_on_day(s) / at_risk(s)),
--   the Kaplan-Meier cumulative incidence (no competing risks). A day with nobody at risk has no row.
--   median_days: median (quantile_cont, interpolated) of days_to_iop among the group's discharges with an
--   observed event on day 0..max_day; stepped_by_max_day is its n. Both are per group, repeated on each
--   row. It describes those who stepped down, not the whole group (use the day where cumulative_share
--   passes 0.5 for that).
-- params:
--   max_day: {type: int, default: 60, label: Days after discharge}
--   as_of: {type: date, default: data_through, label: As of}
-- page: stepdown
-- order: 30
-- panel:
--   title: Days from discharge to first IOP session, by discharge reason
--   empty: No residential discharges match these filters.
--   n_at: {day: 0}
-- chart:
--   kind: curves
--   x: day
--   y: cumulative_share
--   n: at_risk
--   color: reason_group
--   marks: [7, 14, 30]
--   y_label: Reached IOP
--   x_label: Days after discharge
--   hover_word: " reached IOP"
-- suppress:
--   keys: [day]
--   counts: [at_risk, stepped_on_day, stepped_by_max_day]
--   stats:
--     cumulative_share: at_risk
--     median_days: stepped_by_max_day
--   curve:
--     by: [reason_group]
--     x: day
--     at_risk: at_risk
--     events: stepped_on_day
--     estimate: cumulative_share
--     total: stepped_by_max_day

with

eligible as (
    select
        case
            when discharge_reason in ('completed', 'left_against_advice') then discharge_reason
            else 'other'
        end as reason_group,
        $as_of - discharge_date as followup_days,
        days_to_iop
    -- residential_stepdowns: residential_discharges with each discharge's filter attributes
    from filtered(residential_stepdowns, $filters)
    where
        discharge_date <= $as_of
        and not is_transfer
        and discharge_reason not in ('deceased', 'incarcerated')
        and ($start is null or discharge_date >= $start)
        and ($end is null or discharge_date <= $end)
),

-- a step-down dated after as_of was not yet seen on as_of: censored, not an event
observed as (
    select
        reason_group,
        followup_days,
        case when days_to_iop <= followup_days then days_to_iop end as event_day
    from eligible
),

days as (
    select range as day
    from range(0, $max_day + 1)
),

-- a discharge is at risk on the days up to its exit: its step-down day, else its last day of follow-up
-- (event_day is never after followup_days); counted from histograms, not discharge by day
exits as (
    select
        reason_group,
        least(coalesce(event_day, followup_days), $max_day + 1) as exit_day,
        count(*) as leaving
    from observed
    group by all
),

events as (
    select reason_group, event_day as day, count(*) as stepped
    from observed
    where event_day <= $max_day
    group by all
),

daily as (
    select
        g.reason_group,
        d.day,
        coalesce(sum(x.leaving), 0)::bigint as at_risk,
        coalesce(any_value(e.stepped), 0) as stepped_on_day
    from (select distinct reason_group from observed) as g
    cross join days as d
    left join exits as x on g.reason_group = x.reason_group and d.day <= x.exit_day
    left join events as e on g.reason_group = e.reason_group and d.day = e.day
    group by g.reason_group, d.day
),

curve as (
    select
        reason_group,
        day,
        at_risk,
        stepped_on_day,
        1 - product(1 - stepped_on_day / at_risk) over (
            partition by reason_group order by day rows between unbounded preceding and current row
        ) as cumulative_share
    from daily
    where at_risk > 0
),

group_medians as (
    select
        reason_group,
        count(*) filter (where event_day <= $max_day) as stepped_by_max_day,
        quantile_cont(event_day, 0.5) filter (where event_day <= $max_day) as median_days
    from observed
    group by reason_group
),

final as (
    select
        c.reason_group,
        c.day,
        c.at_risk,
        c.stepped_on_day,
        c.cumulative_share,
        m.stepped_by_max_day,
        m.median_days
    from curve as c
    inner join group_medians as m on c.reason_group = m.reason_group
)

select * from final
order by reason_group, day
