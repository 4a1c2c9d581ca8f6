-- title: IOP attendance by calendar week
-- description: >
--   Attended and no-show sessions as a share of scheduled IOP sessions in each calendar week (Monday
--   start), by track and session type, for sessions dated in the start..end range (by session date).
--   Program-cancelled sessions and sessions dated before the episode's admission are left out.
-- definition: |
--   Sessions: attendance rows of IOP episodes at the selected sites (the episode's site), dated from
--   start to end and on or after the episode's admit date, status other than program_cancelled.
--   scheduled: those sessions (attended, no_show, client_cancelled). attended: status attended.
--   no_show: status no_show. attendance_rate = attended / scheduled; no_show_rate = no_show / scheduled.
--   Week: week_start = the Monday on or before the session date. Track: the episode's track, "unknown"
--   when empty. A week, track and type with no scheduled session has no row; series labels the
--   track and type for charting.
--   Standard: same session definitions as engagement_by_week, by calendar week instead of week since
--   admission.
-- area: engagement
-- params:
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
-- chart: {kind: line, x: week_start, y: attendance_rate, color: series, n: scheduled}
-- suppress:
--   counts: [scheduled, attended, no_show]
--   rates:
--     attendance_rate: [attended, scheduled]
--     no_show_rate: [no_show, scheduled]
--   totals:
--     scheduled: [attended, no_show, ~client_cancelled]

with

iop_episodes as (
    select episode_id, admit_date, coalesce(track, 'unknown') as track
    from filtered_episodes(
        sites := $sites, payers := $payers, genders := $genders, age_bands := $age_bands,
        substances := $substances, co_occurring := $co_occurring, living := $living,
        employments := $employment, tracks := $tracks
    )
    where level_of_care = 'iop'
),

sessions as (
    select
        date_trunc('week', a.session_date)::date as week_start,
        e.track,
        a.session_type,
        a.status
    from attendance as a
    inner join iop_episodes as e on a.episode_id = e.episode_id
    where
        a.status <> 'program_cancelled'
        and a.session_date >= e.admit_date
        and ($start is null or a.session_date >= $start)
        and ($end is null or a.session_date <= $end)
),

final as (
    select
        week_start,
        track,
        session_type,
        track || ', ' || session_type as series,
        count(*) as scheduled,
        count(*) filter (where status = 'attended') as attended,
        count(*) filter (where status = 'no_show') as no_show,
        count(*) filter (where status = 'attended') / count(*) as attendance_rate,
        count(*) filter (where status = 'no_show') / count(*) as no_show_rate
    from sessions
    group by week_start, track, session_type
)

select * from final
order by week_start, track, session_type
