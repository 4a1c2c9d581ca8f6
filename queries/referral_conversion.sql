-- title: Referral conversion
-- summary: >
--   Of the IOP referrals made when clients were discharged, how many clients were admitted, and how many
--   attended a session within 14 days, site by site.
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
-- params:
--   as_of: {type: date, default: data_through, label: As of}
-- page: stepdown
-- order: 40
-- panel:
--   title: IOP referral funnel
--   empty: No IOP referrals match these filters.
--   rows: {to_level_of_care: iop}
-- chart:
--   kind: funnel
--   stages: {referred: Referred, admitted: Admitted, attended_14d: Attended ≤14 days}
--   group: site
--   rates: {admitted: admitted_rate, attended_14d: attended_rate}
-- suppress:
--   counts: [referred, admitted, attended_14d]
--   rates:
--     admitted_rate: [admitted, referred]
--     attended_rate: [attended_14d, referred]

with

-- referrals: each referral with the referring episode's attributes, the arriving episode's level
-- (arrived_level) and admission date (arrived_date), and days_to_attended: from the referral date to the
-- arriving episode's first attended session on or after it
referred as (
    select site, to_level_of_care, referral_date, arrived_level, arrived_date, days_to_attended
    from filtered(referrals, $filters, tracks := $tracks)
    where
        referral_date + 14 <= $as_of
        and ($start is null or referral_date >= $start)
        and ($end is null or referral_date <= $end)
),

-- 24-hour levels keep no session records: being admitted is the first day of care
counted as (
    select
        site,
        to_level_of_care,
        count(*) as referred,
        count(*) filter (where arrived_date <= $as_of) as admitted,
        count(*) filter (
            where days_to_attended <= 14
            or (
                arrived_level in ('residential', 'withdrawal_management')
                and arrived_date between referral_date and referral_date + 14
            )
        ) as attended_14d
    from referred
    group by site, to_level_of_care
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
