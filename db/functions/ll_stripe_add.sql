-- Adds to a cohort's figures in the member's stripe (rows appear on first use).
create or replace function ll_stripe_add(p_program text, p_cohort text, p_member text, d_issued bigint default 0,
  d_alloc bigint default 0, d_revoked bigint default 0, d_alloc_rev bigint default 0,
  d_redeemed bigint default 0, d_expired bigint default 0, d_alloc_micro numeric default 0,
  d_alloc_rev_micro numeric default 0) returns void language sql as $$
  insert into cohort_stripes as cs (program_id, cohort, stripe, points_issued, allocated_minor, points_revoked,
                                    allocated_reversed_minor, points_redeemed, points_expired, allocated_micro, allocated_reversed_micro)
  values (p_program, p_cohort, ll_stripe(p_member), d_issued, d_alloc, d_revoked, d_alloc_rev, d_redeemed, d_expired,
          d_alloc_micro, d_alloc_rev_micro)
  on conflict (program_id, cohort, stripe) do update set
    allocated_micro = cs.allocated_micro + d_alloc_micro, allocated_reversed_micro = cs.allocated_reversed_micro + d_alloc_rev_micro,
    points_issued = cs.points_issued + d_issued, allocated_minor = cs.allocated_minor + d_alloc,
    points_revoked = cs.points_revoked + d_revoked, allocated_reversed_minor = cs.allocated_reversed_minor + d_alloc_rev,
    points_redeemed = cs.points_redeemed + d_redeemed, points_expired = cs.points_expired + d_expired
$$;
