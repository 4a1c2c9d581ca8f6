-- Session-level tables that the pre-aggregates (20_summaries.sql, 30_scale.sql) are built from.
-- tests/test_summaries.py proves each table equal to its definition.

-- Session type and status in one byte each (the load has checked every value is one of these).
create type session_kind as enum ('individual', 'group', 'education', 'family');

create type session_status as enum ('attended', 'no_show', 'client_cancelled', 'program_cancelled');

-- A small integer key for each IOP episode, in admission order.
create table iop_episode_keys as
select
    (row_number() over (order by admit_date, episode_id))::integer as episode_key,
    episode_id,
    client_id,
    admit_date
from enrollments
where level_of_care = 'iop'
order by episode_key;

-- Every session of an IOP episode, narrow and in date order, with its day since admission (negative before
-- it): the IOP pre-aggregates are built from it, and a query reads it for the few days a date range cuts out
-- of a week or a month.
create table iop_sessions as
with

final as (
    select
        a.session_date,
        k.episode_key,
        a.session_type::session_kind as session_type,
        a.status::session_status as status,
        (a.session_date - k.admit_date)::integer as day
    from attendance as a
    inner join iop_episode_keys as k on a.episode_id = k.episode_id
)

select * from final
order by session_date;

-- One row per episode with an attended session: the first and last attended session dates.
create table episode_attendance as
select episode_id, min(session_date) as first_attended, max(session_date) as last_attended
from attendance
where status = 'attended'
group by episode_id
order by episode_id;

