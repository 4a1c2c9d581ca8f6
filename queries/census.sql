-- title: Weekly census by level of care
-- summary: >
--   How many clients were in care at each level of care, week by week.
-- description: >
--   Distinct clients active at each level of care in each week (Monday to Sunday), from the week of
--   start (default: 26 weeks before as_of) to the week of end or of as_of, whichever is earlier. A client
--   is active in a week when an episode at that level overlaps it.
-- definition: |
--   Weeks: Monday week starts from the week containing start (default as_of - 182 days) to the week
--   containing the earlier of end and as_of; the last week may be partial.
--   Episodes: all episodes at the selected sites (the episode's site) admitted on or before as_of.
--   Active: admit_date <= week_start + 6 and (discharge_date is null or discharge_date >= week_start);
--   a discharge after as_of counts as still open. active_clients: distinct clients with an active
--   episode at the level that week (a client at two levels in one week counts at both).
--   Every week has a row for every level of care found among the selected episodes, zero when none.
--   Standard: a point-in-period census (any overlap with the week), not an average daily census.
-- area: overview
-- params:
--   as_of: {type: date, default: data_through, label: As of}
-- chart:
--   kind: rate_lines
--   x: week_start
--   y: active_clients
--   color: level_of_care
--   percent: false
--   colours: levels
--   y_label: Active clients
-- suppress:
--   counts: [active_clients]

with

weeks as (
    select unnest(generate_series(
        date_trunc('week', coalesce($start, $as_of - 182)),
        date_trunc('week', least(coalesce($end, $as_of), $as_of)),
        interval 7 day
    ))::date as week_start
),

levels as (
    select distinct level_of_care
    from filtered(episodes, $filters)
    where admit_date <= $as_of
),

-- An episode is active in the weeks from the week of its admission to the week of its discharge (or the
-- last week shown); spans are those weeks among the weeks shown, for the episodes active in any of them.
spans as materialized (
    select
        episode_id,
        client_key,
        level_of_care,
        greatest(
            date_trunc('week', admit_date)::date, date_trunc('week', coalesce($start, $as_of - 182))::date
        ) as first_week,
        least(
            coalesce(date_trunc('week', discharge_date)::date, date '9999-12-31'),
            date_trunc('week', least(coalesce($end, $as_of), $as_of))::date
        ) as last_week
    from filtered(episodes, $filters)
    where
        admit_date <= $as_of
        -- active in a week shown: admitted by the end of the last week, not discharged before the first
        and admit_date <= date_trunc('week', least(coalesce($end, $as_of), $as_of))::date + 6
        and (
            discharge_date is null
            or discharge_date >= date_trunc('week', coalesce($start, $as_of - 182))::date
        )
        and date_trunc('week', coalesce($start, $as_of - 182))
        <= date_trunc('week', least(coalesce($end, $as_of), $as_of))
),

-- the spans active in a week: those started by then less those ended before it (spans begin and end on
-- Mondays, so a running total of starts and ends needs a row per change, not per week and episode)
changes as (
    select level_of_care, first_week as week_start, count(*) as change
    from spans
    group by all
    union all
    select level_of_care, last_week + 7 as week_start, -count(*) as change
    from spans
    group by all
),

active_spans as (
    select w.week_start, c.level_of_care, sum(c.change) as spans
    from weeks as w
    inner join changes as c on w.week_start >= c.week_start
    group by w.week_start, c.level_of_care
),

-- a client with more than one active episode at a level in a week counts once: the extra episodes
-- (same_level_overlaps: the episodes that share a week with another of the client's at the level)
overlapping as (
    select *
    from spans
    where episode_id in (select episode_id from same_level_overlaps)
),

repeated as (
    select client_key, level_of_care
    from overlapping
    group by all
    having count(*) > 1
),

repeat_weeks as (
    select
        s.client_key,
        s.level_of_care,
        unnest(generate_series(s.first_week, s.last_week, interval 7 day))::date as week_start
    from overlapping as s
    semi join repeated as r on s.client_key = r.client_key and s.level_of_care = r.level_of_care
),

client_weeks as (
    select week_start, level_of_care, client_key, count(*) as episodes
    from repeat_weeks
    group by all
),

extra_spans as (
    select week_start, level_of_care, sum(episodes - 1) as extra
    from client_weeks
    group by all
),

active as (
    select
        a.week_start,
        a.level_of_care,
        (a.spans - coalesce(e.extra, 0))::bigint as active_clients
    from active_spans as a
    left join extra_spans as e on a.week_start = e.week_start and a.level_of_care = e.level_of_care
),

final as (
    select
        w.week_start,
        l.level_of_care,
        coalesce(a.active_clients, 0) as active_clients
    from weeks as w
    cross join levels as l
    left join active as a on w.week_start = a.week_start and l.level_of_care = a.level_of_care
)

select * from final
order by week_start, level_of_care
