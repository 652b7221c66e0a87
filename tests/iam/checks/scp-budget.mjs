// The SCPs must fit what Organizations accepts: 5,120 characters per policy as submitted through
// the API or CLI (whitespace counts there; `make scps` submits them minified, as measured here),
// and 5 SCPs attached to one target, FullAWSAccess included. AWS Organizations User Guide,
// "Quotas and service limits": https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html

import { ROOT } from '../lib/world.mjs'

export const SCP_MAX_CHARACTERS = 5120
export const SCPS_PER_TARGET = 5

/** The size of each SCP as `make scps` submits it, and what does not fit. */
export function checkScpBudget(scps) {
  const sizes = scps.map((s) => ({
    file: s.file,
    target: s.target === ROOT ? 'the root' : 'the security account',
    submitted: JSON.stringify(s.policy).length,
    statements: s.policy.Statement.length
  }))
  const problems = sizes
    .filter((s) => s.submitted > SCP_MAX_CHARACTERS)
    .map((s) => `${s.file}: ${s.submitted} characters as submitted, more than ${SCP_MAX_CHARACTERS}`)
  // FullAWSAccess stays attached beside Guardrail's; inherited SCPs do not count.
  const targets = new Map()
  for (const s of scps) targets.set(s.target, (targets.get(s.target) ?? 0) + 1)
  for (const [target, n] of targets) {
    if (n + 1 > SCPS_PER_TARGET) problems.push(`${n} SCPs plus FullAWSAccess on ${target} exceed ${SCPS_PER_TARGET} per target`)
  }
  for (const s of scps) {
    for (const st of s.policy.Statement) {
      if (st.Effect !== 'Deny') problems.push(`${s.file} ${st.Sid}: Guardrail's SCPs only deny`)
      if (st.Principal || st.NotPrincipal) problems.push(`${s.file} ${st.Sid}: SCPs take no Principal`)
    }
  }
  return { sizes, problems }
}
