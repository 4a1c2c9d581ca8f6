-- title: Follow-up after residential or withdrawal management discharge (FUI-aligned)
-- description: >
--   FUI-aligned (adapted; this provider's services only). Share of residential and withdrawal
--   management discharges followed by an attended PHP, IOP or OP session from day 1 to day
--   window_days after discharge (the discharge day itself does not count). Only the last discharge
--   of a direct-transfer chain counts; deaths are excluded; of a client's discharges only those at
--   least 31 days after the previous counted one are kept; discharges whose window is not complete
--   by as_of are left out. start/end bound the discharge date.
-- definition: |
--   Follows HEDIS Follow-Up After High-Intensity Care for Substance Use Disorder (FUI), MY2025, adapted.
--   Index discharges: episodes at level residential or withdrawal_management discharged on or before
--   as_of, less (a) direct transfers: the same client has another residential or withdrawal management
--   episode admitted on the discharge date or the day after (only a chain's last discharge counts),
--   (b) discharge_reason deceased. 31-day rule: of each client's remaining discharges, in date order,
--   the first is kept and each later one only when it is at least 31 days after the last kept one.
--   The rule runs on all of the client's discharges before the site, date and demographic filters,
--   which then choose among the kept discharges (site = site of the index episode).
--   Denominator: kept discharges in the start..end discharge range with discharge_date + window_days
--   on or before as_of. Numerator: of those, the client has an attended session (status attended) in
--   an episode at level php, iop or op, at any site, dated discharge_date + 1 to discharge_date +
--   window_days, both inclusive. Withdrawal management and residential sessions never count.
--   Rate with a Wilson 95% interval, one row per calendar month of discharge (grain month, the default)
--   or one row for the whole start..end range (grain period, month empty). HEDIS reports 7 and 30 days.
--   Differences from HEDIS: no claims (only this provider's own services count as follow-up), no
--   pharmacotherapy (MOUD dispensing or administration) events, a residential readmission is not
--   follow-up (HEDIS counts some residential and inpatient visits), and the age (13+) and continuous
--   enrollment criteria are not applied.
-- area: pathways
-- params:
--   grain: {type: choice, choices: [month, period], default: month, label: Rows}
--   window_days: {type: int, default: 30, label: Follow-up window (days; 7 and 30 are standard)}
--   as_of: {type: date, default: data_through, label: As of}
--   start: {type: date, label: Discharged from}
--   end: {type: date, label: Discharged to}
--   sites: filter
--   payers: filter
--   genders: filter
--   age_bands: filter
--   substances: filter
--   co_occurring: filter
--   living: filter
--   employment: filter
-- chart: {kind: line, x: month, y: followup_rate, n: eligible_discharges}
-- suppress:
--   counts: [eligible_discharges, followed_up]
--   rates:
--     followup_rate: [followed_up, eligible_discharges]
--     ci_low: [followed_up, eligible_discharges]
--     ci_high: [followed_up, eligible_discharges]

with recursive

-- unfiltered on purpose: the transfer and 31-day rules look at all of a client's stays
discharges as (
    select episode_id, client_id, discharge_date, discharge_reason
    from episodes
    where
        level_of_care in ('residential', 'withdrawal_management')
        and discharge_date is not null
        and discharge_date <= $as_of
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

-- the 31-day rule compares with the last KEPT discharge, not the previous one, so it is a walk
-- through each client's discharges carrying that date along
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

index_population as (
    select episode_id
    from filtered_episodes(
        sites := $sites, payers := $payers, genders := $genders, age_bands := $age_bands,
        substances := $substances, co_occurring := $co_occurring, living := $living,
        employments := $employment
    )
    where level_of_care in ('residential', 'withdrawal_management')
),

eligible as (
    select r.episode_id, r.client_id, r.discharge_date
    from thirty_one_day_rule as r
    inner join index_population as p on r.episode_id = p.episode_id
    where
        r.kept
        and r.discharge_date + $window_days <= $as_of
        and ($start is null or r.discharge_date >= $start)
        and ($end is null or r.discharge_date <= $end)
),

-- no pre-aggregate holds PHP and OP sessions, so attendance is read here, for eligible clients only
followup_sessions as (
    select distinct e.client_id, a.session_date
    from attendance as a
    inner join enrollments as e on a.episode_id = e.episode_id
    where
        a.status = 'attended'
        and e.level_of_care in ('php', 'iop', 'op')
        and e.client_id in (select client_id from eligible)
),

followed as (
    select distinct x.episode_id
    from eligible as x
    inner join followup_sessions as f
        on x.client_id = f.client_id
        and f.session_date between x.discharge_date + 1 and x.discharge_date + $window_days
),

counted as (
    select
        case when $grain = 'month' then date_trunc('month', x.discharge_date)::date end as month,
        count(*) as eligible_discharges,
        count(f.episode_id) as followed_up
    from eligible as x
    left join followed as f on x.episode_id = f.episode_id
    group by 1
),

final as (
    select
        month,
        eligible_discharges,
        followed_up,
        followed_up / eligible_discharges as followup_rate,
        wilson_low(followed_up, eligible_discharges) as ci_low,
        wilson_high(followed_up, eligible_discharges) as ci_high
    from counted
)

select * from final
order by month
