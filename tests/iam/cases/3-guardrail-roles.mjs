// Guardrail's own roles in hostile hands: what a compromised function (or someone running code as
// its role) could do with each member role and execution role, beyond its job.

import { allowed, denied, nearMiss, probe } from '../lib/cases.mjs'
import { A, WHO, arn } from '../lib/world.mjs'

export const SECTION = "Guardrail's own roles, used beyond their jobs"
export const PREFIX = 'G'

const tags = (...keys) => ({ 'aws:TagKeys': keys })
const role = (pathAndName) => arn.role(A.dev, pathAndName)
const TAGS_OWN = 'guardrail-tag-enforcer#OnlyItsOwnGuardrailTags'
const TAGS_WAIVER = 'guardrail-tag-enforcer#SetsNoWaiver'
const TAGS_NEVER = 'guardrail-tag-enforcer#NeverTouchProtectedPrincipals'
const QUARANTINE_OWN = 'guardrail-agent-quarantine#OnlyTheQuarantineTag'
const QUARANTINE_NEVER = 'guardrail-agent-quarantine#NeverTouchProtectedPrincipals'
const table = arn.table('guardrail')

export default [
  probe("the tag enforcer's role removes a quarantine tag", { as: WHO.devTags, do: 'iam:UntagRole', on: WHO.quarantinedAgent, context: tags('guardrail:quarantine') },
    denied(TAGS_OWN)),
  probe("the tag enforcer's role removes it spelled Guardrail:Quarantine", { as: WHO.devTags, do: 'iam:UntagRole', on: WHO.quarantinedAgent, context: tags('Guardrail:Quarantine') },
    denied(TAGS_OWN)),
  probe("the tag enforcer's role removes an agent's agent tag", { as: WHO.devTags, do: 'iam:UntagRole', on: WHO.devAgent, context: tags('guardrail:agent') },
    denied(TAGS_OWN)),
  probe("the tag enforcer's role makes a user an agent", { as: WHO.devTags, do: 'iam:TagUser', on: WHO.agentUser, context: tags('guardrail:agent') },
    denied(TAGS_OWN)),
  probe("the tag enforcer's role tags a waiver setter", { as: WHO.devTags, do: 'iam:TagRole', on: WHO.waiverSetter, context: tags('Environment') },
    denied(TAGS_NEVER)),
  probe("the tag enforcer's role tags the StackSets role", { as: WHO.devTags, do: 'iam:TagRole', on: WHO.stackSets, context: tags('Environment') },
    denied(TAGS_NEVER)),
  probe("the tag enforcer's role tags another of Guardrail's roles", { as: WHO.devTags, do: 'iam:UntagRole', on: WHO.devQuarantine, context: tags('Environment') },
    denied(TAGS_NEVER)),
  probe("the tag enforcer's role sets an agent a waiver", { as: WHO.devTags, do: 'iam:TagRole', on: WHO.devAgent, context: tags('guardrail:waiver') },
    denied(TAGS_WAIVER)),
  probe("the tag enforcer's role waives a table, key spelled Guardrail:Waiver", { as: WHO.devTags, do: 'dynamodb:TagResource', on: arn.table('agent-state', A.dev), context: tags('Guardrail:Waiver') },
    denied(TAGS_WAIVER)),
  nearMiss('the tag enforcer removes a waiver no setter set', [TAGS_OWN, TAGS_WAIVER], { as: WHO.devTags, do: 'iam:UntagRole', on: WHO.devAgent, context: tags('guardrail:waiver') },
    allowed('guardrail-tag-enforcer#IamTags')),
  nearMiss('the tag enforcer marks a misnamed role', [TAGS_OWN, TAGS_NEVER], { as: WHO.devTags, do: 'iam:TagRole', on: WHO.devAgent, context: tags('guardrail:violation') },
    allowed('guardrail-tag-enforcer#IamTags')),
  probe("agent-quarantine's role puts a policy on a waiver setter", { as: WHO.devQuarantine, do: 'iam:PutRolePolicy', on: WHO.waiverSetter },
    denied(QUARANTINE_NEVER)),
  probe("agent-quarantine's role puts a policy on the StackSets role", { as: WHO.devQuarantine, do: 'iam:PutRolePolicy', on: WHO.stackSets },
    denied(QUARANTINE_NEVER)),
  probe("agent-quarantine's role puts a policy on a break-glass role", { as: WHO.devQuarantine, do: 'iam:PutRolePolicy', on: WHO.devBreakGlass },
    denied(QUARANTINE_NEVER)),
  probe("agent-quarantine's role removes a policy from Guardrail's tag enforcer", { as: WHO.devQuarantine, do: 'iam:DeleteRolePolicy', on: WHO.devTags },
    denied(QUARANTINE_NEVER)),
  probe("agent-quarantine's role sets a waiver", { as: WHO.devQuarantine, do: 'iam:TagRole', on: WHO.devAgent, context: tags('guardrail:waiver') },
    denied(QUARANTINE_OWN)),
  probe("agent-quarantine's role removes an agent tag spelled GUARDRAIL:AGENT", { as: WHO.devQuarantine, do: 'iam:UntagUser', on: WHO.agentUser, context: tags('GUARDRAIL:AGENT') },
    denied(QUARANTINE_OWN)),
  nearMiss('agent-quarantine tags the principal it quarantines', [QUARANTINE_OWN, QUARANTINE_NEVER], { as: WHO.devQuarantine, do: 'iam:TagRole', on: WHO.devAgent, context: tags('guardrail:quarantine') },
    allowed('guardrail-agent-quarantine#QuarantineAndRelease')),
  probe("agent-quarantine's role attaches AdministratorAccess to an agent", { as: WHO.devQuarantine, do: 'iam:AttachRolePolicy', on: WHO.devAgent },
    denied('implicit:identity')),
  probe("agent-quarantine's role rewrites an agent's trust", { as: WHO.devQuarantine, do: 'iam:UpdateAssumeRolePolicy', on: WHO.devAgent },
    denied('implicit:identity')),
  probe("agent-quarantine's role creates an access key", { as: WHO.devQuarantine, do: 'iam:CreateAccessKey', on: WHO.agentUser },
    denied('implicit:identity')),
  probe("the baseline's role creates a user", { as: WHO.devBaseline, do: 'iam:CreateUser', on: arn.user(A.dev, 'backdoor') },
    denied('implicit:identity')),
  probe("the baseline's role deletes the account's trail", { as: WHO.devBaseline, do: 'cloudtrail:DeleteTrail', on: `arn:aws:cloudtrail:us-east-1:${A.dev}:trail/org` },
    denied('implicit:identity')),
  probe("the tag enforcer's role tags a role with a path of Guardrail's", { as: WHO.devTags, do: 'iam:TagRole', on: role('guardrail-x/y'), context: tags('Environment') },
    denied(TAGS_NEVER)),
  // Execution roles of the security account.
  probe("tag-enforcer's execution role reaches the bootstrap role of a new account", { as: WHO.tagsLambda, do: 'sts:AssumeRole', on: WHO.freshBootstrap },
    denied('implicit:identity')),
  probe("account-baseline's execution role reaches the bootstrap role without the management role", { as: WHO.baselineLambda, do: 'sts:AssumeRole', on: WHO.freshBootstrap },
    denied('implicit:identity')),
  probe("an execution role rewrites its own code", { as: WHO.tagsLambda, do: 'lambda:UpdateFunctionCode', on: arn.fn('guardrail-tag-enforcer') },
    denied('implicit:identity')),
  probe('an execution role passes itself to another function', { as: WHO.quarantineLambda, do: 'iam:PassRole', on: WHO.quarantineLambda },
    denied('implicit:identity')),
  probe('an execution role pauses Guardrail', { as: WHO.baselineLambda, do: 'ssm:PutParameter', on: arn.param('/guardrail/pause') },
    denied('implicit:identity')),
  probe('an execution role deletes a replay record', { as: WHO.quarantineLambda, do: 'dynamodb:DeleteItem', on: table, context: { 'dynamodb:LeadingKeys': ['replay#agent-quarantine#e-1'] } },
    denied('implicit:identity')),
  probe('an execution role lists the table (and every approval)', { as: WHO.tagsLambda, do: 'dynamodb:Scan', on: table },
    denied('implicit:identity')),
  probe('the management role creates an account', { as: WHO.management, do: 'organizations:CreateAccount', on: '*' },
    denied('implicit:identity')),
  probe('the management role detaches an SCP', { as: WHO.management, do: 'organizations:DetachPolicy', on: `arn:aws:organizations::${A.management}:policy/o-exampleorg1/service_control_policy/p-12345678` },
    denied('implicit:identity'))
]
