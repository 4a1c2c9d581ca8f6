-- title: IOP attendance by calendar week
-- summary: >
--   Week by week, the share of scheduled IOP sessions that clients attended, and the share that were no-
--   shows, by track and type of session.
-- description: >
--   Attended and no-show sessions as a share of scheduled IOP sessions in each calendar week (Monday
--   start), by track and session type, for sessions dated in the start..end range (by session date).
--   Program-cancelled sessions and sessions dated before the episode's admission are left out.
-- definition: |
--   Sessions: attendance rows of IOP episodes at the selected sites (the episode's site), dated from
--   start to end and on or after the episode's admit date, status other than program_cancelled.
--   scheduled: those sessions (attended, no_show, client_cancelled). attended: status attended.
--   no_show: status no_show. attendance_rate = attended / scheduled; no_show_rate = no_show / scheduled.
--   Week: week_start = the Monday on or before the session date. With grain month, quarter, half or year,
--   week_start is the first day of the period holding that Monday (a week across two months counts in
--   the month of its Monday). Track: the episode's track, "unknown"
--   when empty. A week, track and type with no scheduled session has no row; series labels the
--   track and type for charting.
--   Standard: same session definitions as engagement_by_week, by calendar week instead of week since
--   admission.
--   Grain: week (the default), month, quarter, half (January-June, July-December) or year buckets
--   week_start by calendar period (macro period_start; the column holds the period's first day); auto
--   takes the finest at which 80% of the chart's rates can be shown after suppression, as director
--   pages ask.
-- params:
--   grain: {type: choice, choices: [week, month, quarter, half, year, auto], default: week, label: Per}
-- page: engagement
-- order: 30
-- panel:
--   title: Attendance and no-shows by {grain}, track and session type
--   empty: No IOP sessions match these filters.
--   recent_weeks: 26
-- chart:
--   kind: facets
--   x: week_start
--   measures: {attendance_rate: Attended, no_show_rate: No-show}
--   facet: session_type
--   color: track
--   n: scheduled
-- suppress:
--   counts: [scheduled, attended, no_show]
--   other: [session_type, track]
--   rates:
--     attendance_rate: [attended, scheduled]
--     no_show_rate: [no_show, scheduled]
--   totals:
--     scheduled: [attended, no_show, ~client_cancelled]

with

-- Sessions of weeks wholly inside start..end are counted in iop_calendar_week_groups (sessions on or after
-- admission by type, per week and set of episode attributes); the days start or end cut
-- out of a week are counted from iop_sessions (every IOP session, in date order, day = days since admission).
whole_weeks as (
    select
        week_start,
        coalesce(track, 'unknown') as track,
        sum(individual_scheduled) as individual_scheduled,
        sum(individual_attended) as individual_attended,
        sum(individual_no_show) as individual_no_show,
        sum(group_scheduled) as group_scheduled,
        sum(group_attended) as group_attended,
        sum(group_no_show) as group_no_show,
        sum(education_scheduled) as education_scheduled,
        sum(education_attended) as education_attended,
        sum(education_no_show) as education_no_show,
        sum(family_scheduled) as family_scheduled,
        sum(family_attended) as family_attended,
        sum(family_no_show) as family_no_show
    from filtered(iop_calendar_week_groups, $filters, tracks := $tracks)
    where
        ($start is null or week_start >= $start)
        and ($end is null or week_start + 6 <= $end)
    group by week_start, track
),

whole_week_types as (
    select
        week_start,
        track,
        'individual' as session_type,
        individual_scheduled as scheduled,
        individual_attended as attended,
        individual_no_show as no_show
    from whole_weeks
    union all
    select week_start, track, 'group' as session_type, group_scheduled, group_attended, group_no_show
    from whole_weeks
    union all
    select
        week_start,
        track,
        'education' as session_type,
        education_scheduled,
        education_attended,
        education_no_show
    from whole_weeks
    union all
    select week_start, track, 'family' as session_type, family_scheduled, family_attended, family_no_show
    from whole_weeks
),

selected_episodes as (
    select episode_key, coalesce(track, 'unknown') as track
    from filtered(iop_episodes, $filters, tracks := $tracks)
),

-- from start to the end of its week (or to end), when start is not a Monday
head_days as (
    select s.session_date, e.track, s.session_type, s.status
    from iop_sessions as s
    inner join selected_episodes as e on s.episode_key = e.episode_key
    where
        $start is not null
        and date_trunc('week', $start::date) < $start
        and s.session_date >= $start
        and s.session_date
        <= least(date_trunc('week', $start::date)::date + 6, coalesce($end::date, date '9999-12-31'))
        and s.day >= 0
        and s.status <> 'program_cancelled'
),

-- from the start of end's week (or from start) to end, when end is not a Sunday and its week is not
-- start's cut week
tail_days as (
    select s.session_date, e.track, s.session_type, s.status
    from iop_sessions as s
    inner join selected_episodes as e on s.episode_key = e.episode_key
    where
        $end is not null
        and date_trunc('week', $end::date)::date + 6 > $end
        and not coalesce(
            date_trunc('week', $start::date) < $start
            and date_trunc('week', $start::date) = date_trunc('week', $end::date), false
        )
        and s.session_date
        >= greatest(date_trunc('week', $end::date), coalesce($start::date, date '0001-01-01'))
        and s.session_date <= $end
        and s.day >= 0
        and s.status <> 'program_cancelled'
),

cut_days as (
    select * from head_days
    union all
    select * from tail_days
),

cut_week_types as (
    select
        date_trunc('week', session_date)::date as week_start,
        track,
        session_type::varchar as session_type,
        count(*) as scheduled,
        count(*) filter (where status = 'attended') as attended,
        count(*) filter (where status = 'no_show') as no_show
    from cut_days
    group by all
),

sessions as (
    select * from whole_week_types
    union all
    select * from cut_week_types
),

-- a coarser grain than week counts each week in the period holding its Monday
bucketed as (
    select period_start(week_start, $grain) as week_start, track, session_type, scheduled, attended, no_show
    from sessions
),

final as (
    select
        week_start,
        track,
        session_type,
        track || ', ' || session_type as series,
        sum(scheduled)::bigint as scheduled,
        sum(attended)::bigint as attended,
        sum(no_show)::bigint as no_show,
        sum(attended) / sum(scheduled) as attendance_rate,
        sum(no_show) / sum(scheduled) as no_show_rate
    from bucketed
    group by week_start, track, session_type
    having sum(scheduled) > 0
)

select * from final
order by week_start, track, session_type
