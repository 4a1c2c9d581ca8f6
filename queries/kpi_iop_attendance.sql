-- title: IOP attendance rate for a period (Overview tile)
-- summary: >
--   The share of scheduled IOP sessions that clients attended.
-- description: >
--   Attended sessions as a share of scheduled IOP sessions dated in the start..end range (by session
--   date): one row for the whole range (grain period, the Overview tile) or one per calendar month.
--   Program-cancelled sessions and sessions dated before the episode's admission are left out.
-- definition: |
--   Sessions: as attendance_weekly: attendance rows of IOP episodes at the selected sites (the episode's
--   site), dated from start to end and on or after the episode's admit date, status other than
--   program_cancelled. scheduled: those sessions (attended, no_show, client_cancelled). attended: status
--   attended. no_show: status no_show. attendance_rate = attended / scheduled.
--   Rows: grain period gives one row for the whole start..end range (month empty), what the Overview tile
--   shows; grain month gives one row per calendar month of session date; grain periods gives one row per
--   period for the tile's trend line: period_starts holds the first day of each period, a session falls in
--   the period with the latest start on or before its date, sessions before the earliest start are left out,
--   and month holds the period's first day. Each period's row equals the grain period row for its dates.
--   Standard: the same session definitions as engagement_by_week and attendance_weekly.
-- area: overview
-- params:
--   grain: {type: choice, choices: [period, month, periods], default: period, label: Rows}
--   period_starts: {type: dates, label: Period starts (grain periods)}
-- chart: {kind: rate_lines, x: month, y: attendance_rate, n: scheduled}
-- suppress:
--   counts: [scheduled, attended, no_show]
--   rates:
--     attendance_rate: [attended, scheduled]
--   totals:
--     scheduled: [attended, no_show, ~client_cancelled]

with

-- Sessions of months wholly inside start..end (and, for grain periods, inside one period) are counted in
-- iop_months (one row per IOP episode and month, sessions on or after admission, with the episode's
-- attributes); the days of a month that start, end or a period start cuts are counted from iop_sessions
-- (every IOP session, in date order, day = days since admission), by day.

-- grain periods: the months that a period start other than the 1st cuts, less those that head_days and
-- tail_days count (start's month when start cuts it, end's month when end cuts it)
period_starts as (
    select unnest($period_starts::date[]) as period_start
    where $grain = 'periods'
),

period_cuts as (
    select distinct date_trunc('month', period_start)::date as month
    from period_starts
    where
        day(period_start) <> 1
        and not coalesce(
            day($start::date) <> 1
            and date_trunc('month', period_start) = date_trunc('month', $start::date), false
        )
        and not coalesce(
            last_day($end::date) > $end
            and date_trunc('month', period_start) = date_trunc('month', $end::date), false
        )
),

whole_months as (
    select month, scheduled, attended, no_show
    from filtered(iop_months, $filters, tracks := $tracks)
    where
        scheduled > 0
        and ($start is null or month >= $start)
        and ($end is null or last_day(month) <= $end)
        and ($grain <> 'periods' or month >= list_min($period_starts))
        and month not in (select month from period_cuts)
),

selected_episodes as (
    select episode_key
    from filtered(iop_episodes, $filters, tracks := $tracks)
),

-- from start to the end of its month (or to end), when start is not the first of a month
head_days as (
    select s.session_date, s.status
    from iop_sessions as s
    inner join selected_episodes as e on s.episode_key = e.episode_key
    where
        $start is not null
        and date_trunc('month', $start::date) < $start
        and s.session_date >= $start
        and s.session_date <= least(last_day($start::date), coalesce($end::date, date '9999-12-31'))
        and s.day >= 0
        and s.status <> 'program_cancelled'
),

-- from the start of end's month (or from start) to end, when end is not the last of a month and its month
-- is not start's cut month
tail_days as (
    select s.session_date, s.status
    from iop_sessions as s
    inner join selected_episodes as e on s.episode_key = e.episode_key
    where
        $end is not null
        and last_day($end::date) > $end
        and not coalesce(
            date_trunc('month', $start::date) < $start
            and date_trunc('month', $start::date) = date_trunc('month', $end::date), false
        )
        and s.session_date
        >= greatest(date_trunc('month', $end::date), coalesce($start::date, date '0001-01-01'))
        and s.session_date <= $end
        and s.day >= 0
        and s.status <> 'program_cancelled'
),

-- grain periods: the days of the months in period_cuts inside the range, with their calendar week and period
cut_calendar as (
    select unnest(generate_series(month, last_day(month), interval 1 day))::date as day
    from period_cuts
),

period_calendar as (
    select
        day,
        date_trunc('week', day)::date as week_start,
        list_max(list_filter($period_starts, lambda p: p <= day)) as period_start
    from cut_calendar
    where
        day >= list_min($period_starts)
        and ($start is null or day >= $start)
        and ($end is null or day <= $end)
),

-- the calendar weeks wholly inside one of those months and one period are counted from
-- iop_calendar_week_groups (sessions on or after admission, per week and set of episode attributes)
whole_weeks as (
    select week_start
    from period_calendar
    group by week_start
    having count(*) = 7 and count(distinct period_start) = 1
),

period_weeks as (
    select
        week_start as day,
        individual_scheduled + group_scheduled + education_scheduled + family_scheduled as scheduled,
        individual_attended + group_attended + education_attended + family_attended as attended,
        individual_no_show + group_no_show + education_no_show + family_no_show as no_show
    from filtered(iop_calendar_week_groups, $filters, tracks := $tracks)
    where week_start in (select week_start from whole_weeks)
),

-- and their other days from iop_sessions
other_days as (
    select day
    from period_calendar
    where week_start not in (select week_start from whole_weeks)
),

period_days as (
    select s.session_date, s.status
    from iop_sessions as s
    inner join other_days as d on s.session_date = d.day
    inner join selected_episodes as e on s.episode_key = e.episode_key
    where
        s.day >= 0
        and s.status <> 'program_cancelled'
),

cut_days as (
    select * from head_days
    union all
    select * from tail_days
    union all
    select * from period_days
),

counted_days as (
    select
        session_date as day,
        count(*) as scheduled,
        count(*) filter (where status = 'attended') as attended,
        count(*) filter (where status = 'no_show') as no_show
    from cut_days
    group by 1
),

-- each whole month, week and cut day, by the first day of its month or of its period
all_rows as (
    select month as day, scheduled, attended, no_show from whole_months
    union all
    select * from period_weeks
    union all
    select * from counted_days
),

counted as (
    select
        case
            when $grain = 'month' then date_trunc('month', day)::date
            when $grain = 'periods' then list_max(list_filter($period_starts, lambda p: p <= day))
        end as month,
        sum(scheduled)::bigint as scheduled,
        sum(attended)::bigint as attended,
        sum(no_show)::bigint as no_show
    from all_rows
    group by 1
),

final as (
    select
        month,
        scheduled,
        attended,
        no_show,
        attended / scheduled as attendance_rate
    from counted
)

select * from final
order by month
