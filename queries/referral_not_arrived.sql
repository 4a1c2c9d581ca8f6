-- title: Referrals that never arrived
-- description: >
--   Referrals made at discharge whose client had not arrived in the referred-to episode by as_of, as a
--   count and a share of referrals, by referring site and month of referral. There is no waiting period:
--   a referral made days before as_of may still arrive later. start/end bound the referral date.
-- definition: |
--   Population: transitions rows dated start..end and on or before as_of, with the referring (from)
--   episode at the selected sites and matching the demographic filters; grouped by the from-episode's
--   site and the calendar month of referral_date.
--   not_arrived: to_episode_id is empty, or names an episode admitted after as_of (not yet arrived on
--   that date). not_arrived_rate = not_arrived / referred.
--   No external standard. Recent months read high until their clients have had time to arrive; compare
--   months of the same age or set as_of a few weeks back.
-- area: pathways
-- params:
--   as_of: {type: date, default: data_through, label: As of}
--   start: {type: date, label: Referred from}
--   end: {type: date, label: Referred to}
--   sites: filter
--   payers: filter
--   genders: filter
--   age_bands: filter
--   substances: filter
--   co_occurring: filter
--   living: filter
--   employment: filter
--   tracks: filter
-- chart: {kind: bar, x: month, y: not_arrived_rate, color: site, n: referred}
-- suppress:
--   counts: [referred, not_arrived]
--   rates:
--     not_arrived_rate: [not_arrived, referred]

with

referring_episodes as (
    select episode_id, site
    from filtered_episodes(
        sites := $sites, payers := $payers, genders := $genders, age_bands := $age_bands,
        substances := $substances, co_occurring := $co_occurring, living := $living,
        employments := $employment, tracks := $tracks
    )
),

referrals as (
    select t.transition_id, t.referral_date, t.to_episode_id, r.site
    from transitions as t
    inner join referring_episodes as r on t.from_episode_id = r.episode_id
    where
        t.referral_date <= $as_of
        and ($start is null or t.referral_date >= $start)
        and ($end is null or t.referral_date <= $end)
),

arrived as (
    select r.transition_id
    from referrals as r
    inner join enrollments as e on r.to_episode_id = e.episode_id
    where e.admit_date <= $as_of
),

monthly as (
    select
        date_trunc('month', r.referral_date)::date as month,
        r.site,
        count(*) as referred,
        count(*) - count(a.transition_id) as not_arrived
    from referrals as r
    left join arrived as a on r.transition_id = a.transition_id
    group by 1, 2
),

final as (
    select
        month,
        site,
        referred,
        not_arrived,
        not_arrived / referred as not_arrived_rate
    from monthly
)

select * from final
order by month, site
