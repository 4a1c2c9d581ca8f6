-- title: Referral conversion
-- description: >
--   Of referrals made at discharge, the share admitted to the referred-to episode and the share whose
--   client attended a session in that episode within 14 days of the referral (days 0-14, the referral day
--   included; for residential and withdrawal management, which record no sessions, admission within those
--   days counts), by referring site and the level referred to. Referrals whose 14-day window is not
--   complete by as_of are left out. start/end bound the referral date.
-- definition: |
--   Population: transitions rows dated start..end whose 14-day window is complete (referral_date + 14
--   on or before as_of), with the referring (from) episode at the selected sites and matching the
--   demographic filters; grouped by the from-episode's site and to_level_of_care.
--   referred: those referrals. admitted: to_episode_id is set and that episode was admitted on or before
--   as_of. attended_14d: an attended session (status attended) in the to-episode itself dated
--   referral_date to referral_date + 14, both inclusive; sessions in any other episode do not count.
--   A to-episode at level residential or withdrawal_management (24-hour care, no session records)
--   counts instead when it was admitted referral_date to referral_date + 14.
--   admitted_rate = admitted / referred; attended_rate = attended_14d / referred (not / admitted, so
--   the two rates are steps of one funnel).
--   No external standard; the 14-day window follows the engagement timing used in HEDIS IET
--   (initiation within 14 days), counted here from the referral, not from a diagnosis.
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
-- chart: {kind: bar, x: to_level_of_care, y: attended_rate, color: site, n: referred}
-- suppress:
--   counts: [referred, admitted, attended_14d]
--   rates:
--     admitted_rate: [admitted, referred]
--     attended_rate: [attended_14d, referred]

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
    select t.transition_id, t.referral_date, t.to_level_of_care, t.to_episode_id, r.site
    from transitions as t
    inner join referring_episodes as r on t.from_episode_id = r.episode_id
    where
        t.referral_date + 14 <= $as_of
        and ($start is null or t.referral_date >= $start)
        and ($end is null or t.referral_date <= $end)
),

admitted as (
    select r.transition_id
    from referrals as r
    inner join enrollments as e on r.to_episode_id = e.episode_id
    where e.admit_date <= $as_of
),

attended_sessions as (
    select distinct r.transition_id
    from referrals as r
    inner join attendance as a on r.to_episode_id = a.episode_id
    where
        a.status = 'attended'
        and a.session_date between r.referral_date and r.referral_date + 14
),

-- 24-hour levels keep no session records: being admitted is the first day of care
arrived_24_hour as (
    select r.transition_id
    from referrals as r
    inner join enrollments as e on r.to_episode_id = e.episode_id
    where
        e.level_of_care in ('residential', 'withdrawal_management')
        and e.admit_date between r.referral_date and r.referral_date + 14
),

attended as (
    select transition_id from attended_sessions
    union
    select transition_id from arrived_24_hour
),

counted as (
    select
        r.site,
        r.to_level_of_care,
        count(*) as referred,
        count(ad.transition_id) as admitted,
        count(att.transition_id) as attended_14d
    from referrals as r
    left join admitted as ad on r.transition_id = ad.transition_id
    left join attended as att on r.transition_id = att.transition_id
    group by r.site, r.to_level_of_care
),

final as (
    select
        site,
        to_level_of_care,
        referred,
        admitted,
        attended_14d,
        admitted / referred as admitted_rate,
        attended_14d / referred as attended_rate
    from counted
)

select * from final
order by site, to_level_of_care
