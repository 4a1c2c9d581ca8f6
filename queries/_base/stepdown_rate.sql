-- stepdown_rate (queries/stepdown_rate.sql) computed from the base tables alone, for the benchmark: the same
-- definition and rows, without the load-time tables (residential_stepdowns, iop_sessions).

with

clients_banded as (
    select
        e.episode_id,
        e.client_id,
        e.level_of_care,
        e.discharge_date,
        e.discharge_reason,
        case
            when c.birth_year is null then 'unknown'
            when year(e.admit_date) - c.birth_year < 18 then 'under 18'
            when year(e.admit_date) - c.birth_year <= 25 then '18-25'
            when year(e.admit_date) - c.birth_year <= 34 then '26-34'
            when year(e.admit_date) - c.birth_year <= 44 then '35-44'
            when year(e.admit_date) - c.birth_year <= 54 then '45-54'
            when year(e.admit_date) - c.birth_year <= 64 then '55-64'
            else '65+'
        end as age_band
    from enrollments as e
    inner join clients as c on e.client_id = c.client_id
    where
        e.level_of_care = 'residential'
        and e.discharge_date is not null
        and ($sites is null or list_contains($sites, e.site))
        and ($payers is null or list_contains($payers, e.payer))
        and ($genders is null or list_contains($genders, c.gender))
        and ($substances is null or list_contains($substances, c.primary_substance))
        and ($co_occurring is null or c.co_occurring_mh = $co_occurring)
        and ($living is null or list_contains($living, c.living_situation))
        and ($employment is null or list_contains($employment, c.employment))
),

discharges as (
    select
        episode_id,
        client_id,
        discharge_date,
        case
            when $grain = 'month' then date_trunc('month', discharge_date)::date
            when $grain = 'periods' then list_max(list_filter($period_starts, lambda p: p <= discharge_date))
        end as month
    from clients_banded
    where
        ($age_bands is null or list_contains($age_bands, age_band))
        and discharge_date <= $as_of
        and discharge_date + $window_days <= $as_of
        and discharge_reason not in ('deceased', 'incarcerated')
        and ($start is null or discharge_date >= $start)
        and ($end is null or discharge_date <= $end)
        and ($grain <> 'periods' or discharge_date >= list_min($period_starts))
),

transfers as (
    select distinct d.episode_id
    from discharges as d
    inner join enrollments as nxt
        on d.client_id = nxt.client_id
        and d.episode_id <> nxt.episode_id
        and nxt.level_of_care in ('residential', 'withdrawal_management')
        and nxt.admit_date between d.discharge_date and d.discharge_date + 1
),

iop_attended_days as (
    select distinct e.client_id, a.session_date
    from attendance as a
    inner join enrollments as e on a.episode_id = e.episode_id
    where e.level_of_care = 'iop' and a.status = 'attended'
),

first_iop as (
    select d.episode_id, min(i.session_date - d.discharge_date) as days_to_iop
    from discharges as d
    inner join iop_attended_days as i
        on d.client_id = i.client_id and d.discharge_date <= i.session_date
    group by d.episode_id
),

eligible as (
    select
        d.month,
        coalesce(f.days_to_iop <= $window_days, false) as stepped
    from discharges as d
    left join first_iop as f on d.episode_id = f.episode_id
    where d.episode_id not in (select t.episode_id from transfers as t)
),

counted as (
    select
        month,
        count(*) as eligible_discharges,
        count(*) filter (where stepped) as stepped_down
    from eligible
    group by month
),

final as (
    select
        month,
        eligible_discharges,
        stepped_down,
        stepped_down / eligible_discharges as stepdown_rate,
        wilson_low(stepped_down, eligible_discharges) as ci_low,
        wilson_high(stepped_down, eligible_discharges) as ci_high
    from counted
)

select * from final
order by month
