-- Pre-aggregates built once per load so that catalog queries never scan attendance.
-- tests/test_summaries.py proves each equal to its definition on the base tables.

-- One row per residential discharge: is it a direct transfer, and how many days
-- from discharge to the first attended IOP session on or after the discharge date.
create table residential_discharges as
with

discharges as (
    select episode_id, client_id, site, discharge_date, discharge_reason
    from enrollments
    where level_of_care = 'residential' and discharge_date is not null
),

transfers as (
    select distinct d.episode_id
    from discharges as d
    inner join enrollments as nxt
        on d.client_id = nxt.client_id
        and nxt.episode_id <> d.episode_id
        and nxt.level_of_care in ('residential', 'withdrawal_management')
        and nxt.admit_date between d.discharge_date and d.discharge_date + 1
),

iop_attended_days as (
    select distinct k.client_id, s.session_date
    from iop_sessions as s
    inner join iop_episode_keys as k on s.episode_key = k.episode_key
    where s.status = 'attended'
),

first_iop as (
    select d.episode_id, min(i.session_date - d.discharge_date) as days_to_iop
    from discharges as d
    inner join iop_attended_days as i
        on d.client_id = i.client_id and i.session_date >= d.discharge_date
    group by d.episode_id
),

final as (
    select
        d.*,
        t.episode_id is not null as is_transfer,
        f.days_to_iop
    from discharges as d
    left join transfers as t on d.episode_id = t.episode_id
    left join first_iop as f on d.episode_id = f.episode_id
)

select * from final
order by discharge_date, episode_id;

-- One row per IOP episode and week since admission (week 1 = days 0-6) that has sessions on or after admission.
create table iop_episode_weeks as
with

sessions as (
    select
        a.episode_id,
        (a.session_date - e.admit_date) // 7 + 1 as week,
        a.session_date,
        a.status,
        a.session_type,
        a.duration_minutes
    from attendance as a
    inner join enrollments as e on a.episode_id = e.episode_id
    where e.level_of_care = 'iop' and a.session_date >= e.admit_date
),

final as (
    select
        episode_id,
        week,
        count(*) filter (where status <> 'program_cancelled') as scheduled,
        count(*) filter (where status = 'attended') as attended,
        count(*) filter (where status = 'no_show') as no_show,
        count(*) filter (where status = 'client_cancelled') as client_cancelled,
        count(*) filter (where status = 'program_cancelled') as program_cancelled,
        count(*) filter (where status = 'attended' and session_type = 'family') as family_attended,
        sum(duration_minutes) filter (where status = 'attended') as attended_minutes,
        count(*) filter (where status = 'attended' and duration_minutes is null) as attended_no_duration
    from sessions
    group by episode_id, week
)

select * from final
order by episode_id, week;
