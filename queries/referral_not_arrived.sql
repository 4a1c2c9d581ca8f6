-- title: Referrals that never arrived
-- summary: >
--   Each month, the share of referrals made at discharge whose client has not arrived at the program they
--   were referred to, site by site.
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
--   Grain: month (the default), quarter, half (January-June, July-December) or year buckets referral_date by
--   calendar period (macro period_start; the column holds the period's first day); auto takes the finest at
--   which 80% of the chart's rates can be shown after suppression, as director pages ask.
-- params:
--   as_of: {type: date, default: data_through, label: As of}
--   grain: {type: choice, choices: [month, quarter, half, year, auto], default: month, label: Per}
-- page: stepdown
-- order: 50
-- panel:
--   title: Referred, not arrived
--   empty: No referrals match these filters.
--   recent_months: 12
-- chart:
--   kind: rate_heatmap
--   x: month
--   y: site
--   z: not_arrived_rate
--   n: referred
--   x_label: Month of referral
--   height: 300
-- suppress:
--   counts: [referred, not_arrived]
--   other: [site]
--   rates:
--     not_arrived_rate: [not_arrived, referred]

with

-- referrals: each referral with the referring episode's attributes and the arriving episode's admission
-- date (arrived_date; empty when to_episode_id is)
monthly as (
    select
        period_start(referral_date, $grain) as month,
        site,
        count(*) as referred,
        count(*) - count(*) filter (where arrived_date <= $as_of) as not_arrived
    from filtered(referrals, $filters, tracks := $tracks)
    where
        referral_date <= $as_of
        and ($start is null or referral_date >= $start)
        and ($end is null or referral_date <= $end)
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
