-- Pre-aggregates for catalog queries at scale (1M clients, 100M sessions), built once per load.
-- Each one carries the attributes the global filters read, named as in `episodes`, so a query filters it
-- with filtered(table, $filters) instead of joining it to the filtered episodes: at this size the join costs more than
-- the scan. tests/test_summaries.py proves each equal to a definition on the base tables.

-- One row per episode: prior_episodes, how many other episodes of the client (any level, any site) were admitted
-- in the 365 days before this admission. A case-mix factor of site_comparison, carried by the tables it reads:
-- counted in the query, this self-join of episodes was most of its time.
create table episode_priors as
select e.episode_id, count(p.episode_id)::integer as prior_episodes
from episodes as e
left join episodes as p
    on e.client_id = p.client_id
    and e.episode_id <> p.episode_id
    and p.admit_date between e.admit_date - 365 and e.admit_date - 1
group by e.episode_id
order by e.episode_id;

-- One row per IOP episode with its attributes, its prior_episodes and what the IOP measures ask of it:
-- is_stepdown: the client had a residential discharge from 14 days before admission to the admission day;
-- has_recent_care: another IOP or residential episode of the client, admitted before this admission, was
--   open at some time in the 194 days before it;
-- initiation_date: the first day with an attended session from admission to admission + 13;
-- engaged: two or more other days with an attended session from initiation + 1 to initiation + 34.
create table iop_episodes as
with

iop as (
    select k.episode_key, e.*
    from episodes as e
    inner join iop_episode_keys as k on e.episode_id = k.episode_id
),

stepdowns as (
    select distinct i.episode_key
    from iop as i
    inner join enrollments as r
        on i.client_id = r.client_id
        and r.level_of_care = 'residential'
        and r.discharge_date between i.admit_date - 14 and i.admit_date
),

recent_care as (
    select distinct i.episode_key
    from iop as i
    inner join enrollments as o
        on i.client_id = o.client_id
        and i.episode_id <> o.episode_id
        and o.level_of_care in ('iop', 'residential')
        and o.admit_date <= i.admit_date - 1
        and (o.discharge_date is null or o.discharge_date >= i.admit_date - 194)
),

-- days with an attended session up to admission + 48, the latest day the two windows can reach
attended_days as (
    select distinct episode_key, session_date, day
    from iop_sessions
    where status = 'attended' and day between 0 and 48
),

initiations as (
    select episode_key, min(session_date) as initiation_date
    from attended_days
    where day <= 13
    group by episode_key
),

engagements as (
    select i.episode_key
    from initiations as i
    inner join attended_days as d
        on i.episode_key = d.episode_key
        and d.session_date between i.initiation_date + 1 and i.initiation_date + 34
    group by i.episode_key
    having count(*) >= 2
),

final as (
    select
        i.episode_key,
        i.episode_id,
        i.client_id,
        i.admit_date,
        i.discharge_date,
        i.discharge_reason,
        s.episode_key is not null as is_stepdown,
        c.episode_key is not null as has_recent_care,
        n.initiation_date,
        g.episode_key is not null as engaged,
        i.site, i.payer, i.gender, i.age_band, i.primary_substance, i.co_occurring_mh, i.living_situation,
        i.employment, i.track,
        p.prior_episodes
    from iop as i
    inner join episode_priors as p on i.episode_id = p.episode_id
    left join stepdowns as s on i.episode_key = s.episode_key
    left join recent_care as c on i.episode_key = c.episode_key
    left join initiations as n on i.episode_key = n.episode_key
    left join engagements as g on i.episode_key = g.episode_key
)

select * from final
order by episode_key;

-- One row per IOP episode and calendar week (from Monday) with a session on or after admission: sessions
-- by type, scheduled (not cancelled by the program), attended and no-show; with the episode's attributes.
create table iop_calendar_weeks as
with

counts as (
    select
        episode_key,
        date_trunc('week', session_date)::date as week_start,
        count(*) filter (where session_type = 'individual' and status <> 'program_cancelled') as individual_scheduled,
        count(*) filter (where session_type = 'individual' and status = 'attended') as individual_attended,
        count(*) filter (where session_type = 'individual' and status = 'no_show') as individual_no_show,
        count(*) filter (where session_type = 'group' and status <> 'program_cancelled') as group_scheduled,
        count(*) filter (where session_type = 'group' and status = 'attended') as group_attended,
        count(*) filter (where session_type = 'group' and status = 'no_show') as group_no_show,
        count(*) filter (where session_type = 'education' and status <> 'program_cancelled') as education_scheduled,
        count(*) filter (where session_type = 'education' and status = 'attended') as education_attended,
        count(*) filter (where session_type = 'education' and status = 'no_show') as education_no_show,
        count(*) filter (where session_type = 'family' and status <> 'program_cancelled') as family_scheduled,
        count(*) filter (where session_type = 'family' and status = 'attended') as family_attended,
        count(*) filter (where session_type = 'family' and status = 'no_show') as family_no_show
    from iop_sessions
    where day >= 0
    group by episode_key, week_start
),

final as (
    select
        c.*,
        e.site, e.payer, e.gender, e.age_band, e.primary_substance, e.co_occurring_mh, e.living_situation,
        e.employment, e.track
    from counts as c
    inner join iop_episodes as e on c.episode_key = e.episode_key
)

select * from final;

-- iop_calendar_weeks summed over the episodes that share a week and every filter attribute, in week order:
-- the catalog queries sum these counts over the filtered rows, so they read 2.5 times fewer rows (1M clients:
-- 2.4M instead of 6.0M). Not sorted: sorting the wide result would cost more load time than it saves.
create table iop_calendar_week_groups as
select
    week_start,
    site,
    payer,
    gender,
    age_band,
    primary_substance,
    co_occurring_mh,
    living_situation,
    employment,
    track,
    sum(individual_scheduled)::integer as individual_scheduled,
    sum(individual_attended)::integer as individual_attended,
    sum(individual_no_show)::integer as individual_no_show,
    sum(group_scheduled)::integer as group_scheduled,
    sum(group_attended)::integer as group_attended,
    sum(group_no_show)::integer as group_no_show,
    sum(education_scheduled)::integer as education_scheduled,
    sum(education_attended)::integer as education_attended,
    sum(education_no_show)::integer as education_no_show,
    sum(family_scheduled)::integer as family_scheduled,
    sum(family_attended)::integer as family_attended,
    sum(family_no_show)::integer as family_no_show
from iop_calendar_weeks
group by
    week_start, site, payer, gender, age_band, primary_substance, co_occurring_mh, living_situation, employment,
    track
order by week_start;

-- One row per IOP episode and calendar month with a session on or after admission: scheduled (not cancelled
-- by the program), attended, no-show, and whether one was an attended family session; with attributes.
create table iop_months as
with

counts as (
    select
        episode_key,
        date_trunc('month', session_date)::date as month,
        count(*) filter (where status <> 'program_cancelled') as scheduled,
        count(*) filter (where status = 'attended') as attended,
        count(*) filter (where status = 'no_show') as no_show,
        count(*) filter (where status = 'attended' and session_type = 'family') > 0 as had_family
    from iop_sessions
    where day >= 0
    group by episode_key, month
),

final as (
    select
        c.*,
        e.site, e.payer, e.gender, e.age_band, e.primary_substance, e.co_occurring_mh, e.living_situation,
        e.employment, e.track
    from counts as c
    inner join iop_episodes as e on c.episode_key = e.episode_key
)

select * from final
order by month, episode_key;

-- iop_episode_weeks with each episode's dates and attributes, in admission order, and whether the week reached
-- iop_dose.sql's two rules (which says why): 3 attended sessions, and 9 attended hours (a week with an
-- attended session lacking a duration meets the hours rule if and only if it meets the sessions rule).
create table iop_weeks as
with

final as (
    select
        e.episode_key,
        e.admit_date,
        e.discharge_date,
        w.week,
        w.scheduled,
        w.attended,
        w.attended_minutes,
        w.attended_no_duration,
        w.attended >= 3 as three_sessions,
        coalesce(
            case when w.attended_no_duration > 0 then w.attended >= 3 else w.attended_minutes >= 540 end, false
        ) as nine_hours,
        e.site, e.payer, e.gender, e.age_band, e.primary_substance, e.co_occurring_mh, e.living_situation,
        e.employment, e.track
    from iop_episode_weeks as w
    inner join iop_episodes as e on w.episode_id = e.episode_id
)

select * from final
order by admit_date, episode_key, week;

-- One row per discharged IOP episode with its attributes: its active weeks (week 1 to the week of its
-- discharge) and how many of them reached 3 attended sessions and 9 attended hours (iop_weeks), so that iop_dose.sql reads one row per episode discharged by its as-of date
-- instead of one per week.
create table iop_episode_doses as
with

weeks as (
    select
        episode_key,
        count(*) filter (where three_sessions) as weeks_3plus_sessions,
        count(*) filter (where nine_hours) as weeks_9plus_hours
    from iop_weeks
    where discharge_date is not null and week <= (discharge_date - admit_date) // 7 + 1
    group by episode_key
),

final as (
    select
        e.episode_key,
        e.admit_date,
        e.discharge_date,
        (e.discharge_date - e.admit_date) // 7 + 1 as active_weeks,
        coalesce(w.weeks_3plus_sessions, 0) as weeks_3plus_sessions,
        coalesce(w.weeks_9plus_hours, 0) as weeks_9plus_hours,
        e.site, e.payer, e.gender, e.age_band, e.primary_substance, e.co_occurring_mh, e.living_situation,
        e.employment, e.track
    from iop_episodes as e
    left join weeks as w on e.episode_key = w.episode_key
    where e.discharge_date is not null
)

select * from final
order by admit_date, episode_key;

-- One row per residential or withdrawal management discharge that is not a direct transfer (another such
-- admission on the discharge day or the next) and not a death: whether the 31-day rule keeps it (31 days or
-- more after the client's last kept discharge), and the days to the client's first attended PHP, IOP or OP
-- session after the discharge day; with prior_episodes. Neither depends on an as-of date: both look only at
-- earlier discharges or at sessions, and an earlier as-of only leaves out later discharges.
create table followup_discharges as
with recursive

discharges as (
    select episode_id, client_id, discharge_date, discharge_reason
    from episodes
    where
        level_of_care in ('residential', 'withdrawal_management')
        and discharge_date is not null
),

transfers as (
    select distinct d.episode_id
    from discharges as d
    inner join episodes as nxt
        on d.client_id = nxt.client_id
        and d.episode_id <> nxt.episode_id
        and nxt.level_of_care in ('residential', 'withdrawal_management')
        and nxt.admit_date between d.discharge_date and d.discharge_date + 1
),

candidates as (
    select
        d.episode_id,
        d.client_id,
        d.discharge_date,
        row_number() over (partition by d.client_id order by d.discharge_date, d.episode_id) as seq
    from discharges as d
    left join transfers as t on d.episode_id = t.episode_id
    where t.episode_id is null and d.discharge_reason <> 'deceased'
),

thirty_one_day_rule as (
    select episode_id, client_id, seq, discharge_date, true as kept, discharge_date as last_kept
    from candidates
    where seq = 1
    union all
    select
        c.episode_id,
        c.client_id,
        c.seq,
        c.discharge_date,
        c.discharge_date >= r.last_kept + 31 as kept,
        case when c.discharge_date >= r.last_kept + 31 then c.discharge_date else r.last_kept end as last_kept
    from thirty_one_day_rule as r
    inner join candidates as c on r.client_id = c.client_id and r.seq + 1 = c.seq
),

outpatient as (
    select e.client_id, e.episode_id, a.first_attended, a.last_attended
    from enrollments as e
    inner join episode_attendance as a on e.episode_id = a.episode_id
    where e.level_of_care in ('php', 'iop', 'op')
),

-- the client's outpatient episodes with an attended session after the discharge day
later as (
    select d.episode_id, d.discharge_date, o.episode_id as outpatient_episode, o.first_attended
    from candidates as d
    inner join outpatient as o on d.client_id = o.client_id and o.last_attended > d.discharge_date
),

-- one that also had attended sessions up to the discharge day: its first attended session after it
straddling as (
    select l.episode_id, min(a.session_date) as first_after
    from later as l
    inner join attendance as a
        on l.outpatient_episode = a.episode_id
        and a.status = 'attended'
        and a.session_date > l.discharge_date
    where l.first_attended <= l.discharge_date
    group by l.episode_id
),

first_followup as (
    select episode_id, min(first_after) as first_after
    from (
        select episode_id, first_attended as first_after from later where first_attended > discharge_date
        union all
        select episode_id, first_after from straddling
    )
    group by episode_id
),

final as (
    select
        r.episode_id,
        e.client_id,
        e.level_of_care,
        r.discharge_date,
        r.kept,
        f.first_after - r.discharge_date as days_to_followup,
        e.site, e.payer, e.gender, e.age_band, e.primary_substance, e.co_occurring_mh, e.living_situation,
        e.employment, e.track,
        p.prior_episodes
    from thirty_one_day_rule as r
    inner join episodes as e on r.episode_id = e.episode_id
    inner join episode_priors as p on r.episode_id = p.episode_id
    left join first_followup as f on r.episode_id = f.episode_id
)

select * from final
order by discharge_date, episode_id;

-- One row per referral, with the referring episode's attributes and what became of it: the arriving
-- episode's level and admission date, and the days from the referral to that episode's first attended
-- session on or after the referral date.
create table referrals as
with

arrivals as (
    select
        t.transition_id,
        t.referral_date,
        n.level_of_care as arrived_level,
        n.admit_date as arrived_date,
        a.first_attended,
        a.last_attended,
        t.to_episode_id
    from transitions as t
    inner join enrollments as n on t.to_episode_id = n.episode_id
    left join episode_attendance as a on t.to_episode_id = a.episode_id
),

-- an arriving episode with attended sessions before the referral date too: its first one from that date
straddling as (
    select r.transition_id, min(a.session_date) as first_from
    from arrivals as r
    inner join attendance as a
        on r.to_episode_id = a.episode_id
        and a.status = 'attended'
        and a.session_date >= r.referral_date
    where r.first_attended < r.referral_date and r.last_attended >= r.referral_date
    group by r.transition_id
),

final as (
    select
        t.transition_id,
        t.referral_date,
        t.to_level_of_care,
        t.to_episode_id,
        r.arrived_level,
        r.arrived_date,
        case
            when r.first_attended >= t.referral_date then r.first_attended
            else s.first_from
        end - t.referral_date as days_to_attended,
        e.site, e.payer, e.gender, e.age_band, e.primary_substance, e.co_occurring_mh, e.living_situation,
        e.employment, e.track
    from transitions as t
    inner join episodes as e on t.from_episode_id = e.episode_id
    left join arrivals as r on t.transition_id = r.transition_id
    left join straddling as s on t.transition_id = s.transition_id
)

select * from final
order by referral_date, transition_id;

-- One row per residential or IOP discharge: whether the client had another residential or withdrawal
-- management admission 0-1 days after it (a transfer), and the days to the first such admission 2-90 days
-- after it (a readmission).
create table discharge_readmissions as
with

discharges as (
    select *
    from episodes
    where level_of_care in ('residential', 'iop') and discharge_date is not null
),

gaps as (
    select d.episode_id, a.admit_date - d.discharge_date as days
    from discharges as d
    inner join enrollments as a
        on d.client_id = a.client_id
        and d.episode_id <> a.episode_id
        and a.level_of_care in ('residential', 'withdrawal_management')
        and a.admit_date between d.discharge_date and d.discharge_date + 90
),

per_discharge as (
    select
        episode_id,
        bool_or(days <= 1) as is_transfer,
        min(days) filter (where days >= 2) as days_to_readmission
    from gaps
    group by episode_id
),

final as (
    select
        d.episode_id,
        d.level_of_care,
        d.discharge_date,
        d.discharge_reason,
        coalesce(p.is_transfer, false) as is_transfer,
        p.days_to_readmission,
        d.site, d.payer, d.gender, d.age_band, d.primary_substance, d.co_occurring_mh, d.living_situation,
        d.employment, d.track
    from discharges as d
    left join per_discharge as p on d.episode_id = p.episode_id
)

select * from final
order by discharge_date, episode_id;

-- Every episode as a step of a treatment path, on all the data (an as-of date after every date in it): a
-- client's episodes in admission order, a new path after a gap of more than 90 days since the previous
-- discharge. Each row carries the level of the path's next step, and the attributes and admission date of
-- its first step, which is what the pathways query filters on.
create table path_steps as
with

ordered as (
    select
        client_id,
        episode_id,
        level_of_care,
        admit_date,
        discharge_date,
        row_number() over (
            partition by client_id order by admit_date, discharge_date nulls last, episode_id
        ) as seq
    from enrollments
),

breaks as (
    select
        *,
        seq = 1 or coalesce(admit_date - lag(discharge_date) over by_client > 90, false) as starts_path
    from ordered
    window by_client as (partition by client_id order by seq)
),

paths as (
    select
        *,
        sum(case when starts_path then 1 else 0 end) over (
            partition by client_id order by seq rows between unbounded preceding and current row
        ) as path_no
    from breaks
),

steps as (
    select
        *,
        row_number() over (partition by client_id, path_no order by seq) as step,
        lead(level_of_care) over (partition by client_id, path_no order by seq) as next_level,
        first_value(episode_id) over (partition by client_id, path_no order by seq) as first_episode
    from paths
),

final as (
    select
        s.client_id,
        s.path_no,
        s.step,
        s.level_of_care,
        s.next_level,
        f.admit_date as path_start,
        f.site, f.payer, f.gender, f.age_band, f.primary_substance, f.co_occurring_mh, f.living_situation,
        f.employment, f.track
    from steps as s
    inner join episodes as f on s.first_episode = f.episode_id
)

select * from final
order by path_start, client_id, path_no, step;

-- Episodes whose weeks (from the week of admission to the week of discharge, or on while open) overlap those
-- of another episode of the same client at the same level: only these can make a client count twice in a
-- week of the census, whatever the filters and as-of date.
create table same_level_overlaps as
select distinct a.episode_id
from episodes as a
inner join episodes as b
    on a.client_id = b.client_id
    and a.level_of_care = b.level_of_care
    and a.episode_id <> b.episode_id
    and date_trunc('week', b.admit_date) <= coalesce(date_trunc('week', a.discharge_date), date '9999-12-31')
    and date_trunc('week', a.admit_date) <= coalesce(date_trunc('week', b.discharge_date), date '9999-12-31')
order by a.episode_id;

-- residential_discharges with each discharge's filter attributes (site is already there) and prior_episodes.
create table residential_stepdowns as
select
    d.*,
    e.payer, e.gender, e.age_band, e.primary_substance, e.co_occurring_mh, e.living_situation, e.employment,
    e.track,
    p.prior_episodes
from residential_discharges as d
inner join episodes as e on d.episode_id = e.episode_id
inner join episode_priors as p on d.episode_id = p.episode_id
order by d.discharge_date, d.episode_id;
