-- title: Site comparison adjusted for case mix
-- summary: >
--   Each site's rate beside the rate its mix of clients would predict, so that sites serving different
--   clients compare fairly.
-- description: >
--   For each site, the observed and case-mix expected step-down, follow-up or IOP completion count, the
--   observed/expected ratio with a 95% interval, the raw and adjusted rate, and funnel limits around the
--   all-site rate. Expected counts come from a logistic regression on age band, gender, primary substance,
--   co-occurring mental health, living situation, employment, payer and prior episodes, fitted over every
--   site, so that a site-limited view gets the same expected values. start/end bound the discharge date.
-- definition: |
--   Population and outcome, at the site of the index episode:
--   stepdown_7/14/30: the denominator and numerator of stepdown_rate with window_days 7, 14 or 30
--   (residential discharges less deaths, incarcerations, direct transfers and incomplete windows; outcome:
--   an attended IOP session on day 0 to day window_days). followup_7/30: the denominator and numerator of
--   fui_followup with window_days 7 or 30. iop_completion: every IOP discharge, as discharge_outcomes counts
--   it; outcome: discharge_reason completed.
--   Case-mix factors of each index episode: age band at admission, gender, primary substance, co-occurring
--   mental health, living situation, employment, payer, and the client's other episodes (any level, any site)
--   admitted in the 365 days before this admission (0, 1, 2+). A missing value is a level of its own; a level
--   with fewer than 30 episodes is merged into its factor's reference level (the most common one).
--   Model: logistic regression (statsmodels GLM Binomial) of the outcome on those factors, over every
--   eligible episode in the range at all sites (the sites filter and the user's site scope choose the rows
--   shown, not the episodes fitted); the client-group filters do narrow the episodes fitted. expected = the
--   sum of a site's predicted probabilities. If the fit does not converge or a level is perfectly separated,
--   the result says so and gives raw rates only (expected, ratios, adjusted_rate and flag empty).
--   oe_ratio = observed / expected, oe_low/oe_high its 95% interval treating observed as Poisson with mean
--   expected (Byar's approximation). overall_rate = all-site observed / eligible. adjusted_rate = oe_ratio x
--   overall_rate (indirect standardisation). limit95_*/limit998_*: Spiegelhalter's (2005) exact binomial
--   funnel limits (with interpolation) around overall_rate at the site's eligible. flag: above or below when
--   adjusted_rate lies outside the 99.8% limits, else within. See docs/measures/site_comparison.md.
-- area: stepdown
-- model: casemix
-- params:
--   measure:
--     type: choice
--     choices: [stepdown_7, stepdown_14, stepdown_30, followup_7, followup_30, iop_completion]
--     default: stepdown_14
--     label: Measure
--   as_of: {type: date, default: data_through, label: As of}
-- chart: {kind: funnel_plot, rate: adjusted_rate}
-- suppress:
--   counts: [eligible, observed]
--   rates:
--     oe_ratio: [observed, eligible]
--     oe_low: [observed, eligible]
--     oe_high: [observed, eligible]
--     raw_rate: [observed, eligible]
--     adjusted_rate: [observed, eligible]
--     flag: [observed, eligible]
--   stats:
--     expected: [eligible, observed]
--     overall_rate: eligible
--     limit95_low: eligible
--     limit95_high: eligible
--     limit998_low: eligible
--     limit998_high: eligible

-- One row per site, outcome and combination of case-mix factor levels, with its count of eligible episodes
-- (the model's likelihood depends on episodes only through these counts). The runner fits the model
-- (outcomes/measures/casemix.py) on these rows and returns one row per site; these rows never leave it.

with

settings as (
    select
        $measure as measure,
        case $measure
            when 'stepdown_7' then 7
            when 'stepdown_14' then 14
            when 'stepdown_30' then 30
            when 'followup_7' then 7
            when 'followup_30' then 30
        end as window_days
),

residential as (
    select *
    from filtered(residential_stepdowns, $filters)
),

-- stepdown_rate's denominator, and its numerator as the outcome
stepdowns as (
    select r.*, coalesce(r.days_to_iop <= s.window_days, false) as outcome
    from residential as r
    cross join settings as s
    where
        s.measure like 'stepdown_%'
        and r.discharge_date <= $as_of
        and r.discharge_date + s.window_days <= $as_of
        and not r.is_transfer
        and r.discharge_reason not in ('deceased', 'incarcerated')
        and ($start is null or r.discharge_date >= $start)
        and ($end is null or r.discharge_date <= $end)
),

high_intensity as (
    select *
    from filtered(followup_discharges, $filters)
),

-- fui_followup's denominator, and its numerator as the outcome
followups as (
    select f.*, coalesce(f.days_to_followup <= s.window_days, false) as outcome
    from high_intensity as f
    cross join settings as s
    where
        s.measure like 'followup_%'
        and f.kept
        and f.discharge_date <= $as_of
        and f.discharge_date + s.window_days <= $as_of
        and ($start is null or f.discharge_date >= $start)
        and ($end is null or f.discharge_date <= $end)
),

iop as (
    select *
    from filtered(iop_episodes, $filters)
),

-- discharge_outcomes' IOP discharges, and its completed count as the outcome
completions as (
    select i.*, i.discharge_reason = 'completed' as outcome
    from iop as i
    cross join settings as s
    where
        s.measure = 'iop_completion'
        and i.discharge_date <= $as_of
        and ($start is null or i.discharge_date >= $start)
        and ($end is null or i.discharge_date <= $end)
),

-- the index episodes with their case-mix factors; the tables read carry prior_episodes (episode_priors)
index_episodes as (
    select * from stepdowns
    union all by name
    select * from followups
    union all by name
    select * from completions
),

per_episode as (
    select
        site,
        outcome::integer as outcome,
        age_band,
        gender,
        primary_substance,
        case co_occurring_mh when true then 'yes' when false then 'no' end as co_occurring_mh,
        living_situation,
        employment,
        payer,
        case when prior_episodes = 0 then '0' when prior_episodes = 1 then '1' else '2+' end as prior_episodes
    from index_episodes
),

-- not sorted: the runner's counts are sums of whole numbers, the same in any order
final as (
    select *, count(*) as episodes
    from per_episode
    group by all
)

select * from final
