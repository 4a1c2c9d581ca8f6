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

iop_episodes as (
    select episode_id, admit_date
    from filtered_episodes(
        sites := $sites, payers := $payers, genders := $genders, age_bands := $age_bands,
        substances := $substances, co_occurring := $co_occurring, living := $living,
        employments := $employment, tracks := $tracks
    )
    where level_of_care = 'iop'
),

sessions as (
    select
        case when $grain = 'month' then date_trunc('month', a.session_date)::date end as month,
        a.status
    from attendance as a
    inner join iop_episodes as e on a.episode_id = e.episode_id
    where
        a.status <> 'program_cancelled'
        and a.session_date >= e.admit_date
        and ($start is null or a.session_date >= $start)
        and ($end is null or a.session_date <= $end)
),

counted as (
    select
        month,
        count(*) as scheduled,
        count(*) filter (where status = 'attended') as attended,
        count(*) filter (where status = 'no_show') as no_show
    from sessions
    group by month
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
