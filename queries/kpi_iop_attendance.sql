-- title: IOP attendance rate for a period (Overview tile)
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
--   shows; grain month gives one row per calendar month of session date, for its trend line.
--   Standard: the same session definitions as engagement_by_week and attendance_weekly.
-- area: overview
-- params:
--   grain: {type: choice, choices: [period, month], default: period, label: Rows}
--   start: {type: date, label: Sessions from}
--   end: {type: date, label: Sessions to}
--   sites: filter
--   payers: filter
--   genders: filter
--   age_bands: filter
--   substances: filter
--   co_occurring: filter
--   living: filter
--   employment: filter
--   tracks: filter
-- chart: {kind: line, x: month, y: attendance_rate, n: scheduled}
-- suppress:
--   counts: [scheduled, attended, no_show]
--   rates:
--     attendance_rate: [attended, scheduled]
--   totals:
--     scheduled: [attended, no_show, ~client_cancelled]

with

-- Sessions of months wholly inside start..end are counted in iop_months (one row per IOP episode and month,
-- sessions on or after admission, with the episode's attributes); the days start or end cut out of a month
-- are counted from iop_sessions (every IOP session, in date order, day = days since admission).
whole_months as (
    select month, scheduled, attended, no_show
    from filtered_rows(
        iop_months,
        sites := $sites, payers := $payers, genders := $genders, age_bands := $age_bands,
        substances := $substances, co_occurring := $co_occurring, living := $living,
        employments := $employment, tracks := $tracks
    )
    where
        scheduled > 0
        and ($start is null or month >= $start)
        and ($end is null or last_day(month) <= $end)
),

selected_episodes as (
    select episode_key
    from filtered_rows(
        iop_episodes,
        sites := $sites, payers := $payers, genders := $genders, age_bands := $age_bands,
        substances := $substances, co_occurring := $co_occurring, living := $living,
        employments := $employment, tracks := $tracks
    )
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

cut_days as (
    select * from head_days
    union all
    select * from tail_days
),

cut_months as (
    select
        date_trunc('month', session_date)::date as month,
        count(*) as scheduled,
        count(*) filter (where status = 'attended') as attended,
        count(*) filter (where status = 'no_show') as no_show
    from cut_days
    group by 1
),

all_months as (
    select * from whole_months
    union all
    select * from cut_months
),

counted as (
    select
        case when $grain = 'month' then month end as month,
        sum(scheduled)::bigint as scheduled,
        sum(attended)::bigint as attended,
        sum(no_show)::bigint as no_show
    from all_months
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
