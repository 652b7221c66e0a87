// How a case is written: who asks to do what on which resource, what the evaluator must decide,
// the statement that must decide it, and why the case exists.
//
// Kinds:
// - claim: something README.md or docs/SECURITY.md says about a role, the SCPs, a trust policy
//   or a resource policy;
// - near-miss: legitimate work beside a Deny statement (`beside`), which must stay allowed so
//   that no Deny is vacuous and no fix breaks Guardrail's or people's work;
// - probe: what an agent with administrator rights would try; denied, or allowed with the
//   `residual` risk and its compensating control stated (docs/SECURITY.md lists them).

export const allowed = (...by) => ({ decision: 'Allowed', by })
export const denied = (...by) => ({ decision: 'Denied', by })

/** A request: `as` a principal ARN (or service principal), `do` an action, `on` a resource. */
const make = (kind, why, request, expect, extra = {}) => {
  if (!request.as || !request.do || !request.on) throw new Error(`incomplete case: ${why}`)
  return { kind, why, request, expect, ...extra }
}

export const claim = (why, request, expect) => make('claim', why, request, expect)

/** `beside`: the Deny statement ids (`policy#Sid`) this legitimate request sits next to. */
export const nearMiss = (why, beside, request, expect = allowed()) =>
  make('near-miss', why, request, expect, { beside: [].concat(beside) })

export const probe = (why, request, expect) => make('probe', why, request, expect)

/** A probe no policy can close: allowed, with the compensating control that answers it. */
export const residual = (why, request, expect, control) => make('probe', why, request, expect, { residual: control })
