// An AI agent with AdministratorAccess in a member account, and all the time it wants: it tries
// to become exempt, to undo its own quarantine, to set itself a waiver, to blind Guardrail or to
// turn Guardrail's roles against others. Beside each Deny, the work people and Guardrail do there.

import { allowed, denied, nearMiss, probe, residual } from '../lib/cases.mjs'
import { A, WHO, arn } from '../lib/world.mjs'

export const SECTION = 'An admin agent in a member account'
export const PREFIX = 'M'

const ROOT_SCP = 'scp:protect-guardrail'
const EXEMPT = `${ROOT_SCP}#ExemptRolesStayExempt`
const QUARANTINE = `${ROOT_SCP}#QuarantineStaysUntilReleased`
const TAGS = `${ROOT_SCP}#GuardrailTagsAreGuardrails`
const TAGS_ANY_CASE = `${ROOT_SCP}#GuardrailTagsAnyCase`
const WAIVER_ANY_CASE = `${ROOT_SCP}#WaiverTagAnyCase`
const SETTERS = `${ROOT_SCP}#WaiverSettersSetOnlyWaivers`
const RULES = `${ROOT_SCP}#ForwardingRulesStay`
const ORG_SCP = 'scp:protect-organization'
const SERVICE_PATH = `${ORG_SCP}#ServiceLinkedPathStaysAws`
const PROVIDER = `${ORG_SCP}#IdentityCenterProviderStays`
const STAY = `${ORG_SCP}#AccountsStayInTheOrganization`
const STACKS = `${ORG_SCP}#GuardrailStacksStay`
const POLICIES = `${ORG_SCP}#GuardrailPoliciesStay`
const isolation = `arn:aws:iam::${A.dev}:policy/guardrail-isolate`
const BOUNDARY = 'guardrail-isolate#Nothing'
const ALARMS = `${ROOT_SCP}#AlarmsThatContainStayHonest`

const agent = (action, on, context) => ({ as: WHO.devAgent, do: action, on, context })
const tags = (...keys) => ({ 'aws:TagKeys': keys })
const role = (pathAndName) => arn.role(A.dev, pathAndName)
const forwarding = WHO.devForwarding
const watchedAlarm = arn.alarm('agent-runner-spend', A.dev)

export default [
  // Becoming exempt: the SCPs spare guardrail-*, break-glass-* and stacksets-exec-* by name.
  probe('creates a role named like a break-glass role', agent('iam:CreateRole', role('break-glass-evil')), denied(EXEMPT)),
  probe('creates a role under a path that starts like break-glass (role/break-glass-x/evil)', agent('iam:CreateRole', role('break-glass-x/evil')), denied(EXEMPT)),
  probe('creates a role named like the StackSets execution role', agent('iam:CreateRole', role('stacksets-exec-evil')), denied(EXEMPT)),
  probe("creates Guardrail's member role before the StackSet does (a new account)", agent('iam:CreateRole', role('guardrail-tag-enforcer')), denied(EXEMPT)),
  probe('creates a role under a guardrail- path (role/guardrail-x/evil)', agent('iam:CreateRole', role('guardrail-x/evil')), denied(EXEMPT)),
  probe('creates itself a waiver-setter role', agent('iam:CreateRole', role('security-waivers/evil')), denied(EXEMPT)),
  probe('creates a role named like the Control Tower bootstrap role, which Guardrail never quarantines', agent('iam:CreateRole', role('AWSControlTowerExecution')), denied(EXEMPT)),
  probe('creates a role under /aws-reserved/, which the policy never quarantines', agent('iam:CreateRole', role('aws-reserved/sso.amazonaws.com/evil')), denied(EXEMPT)),
  probe("rewrites the trust of an IAM Identity Center role (never quarantined) to work as it",
    agent('iam:UpdateAssumeRolePolicy', role('aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123456789abcdef')), denied(EXEMPT)),
  probe('creates a role under /aws-service-role/, which the policy never quarantines', agent('iam:CreateRole', role('aws-service-role/evil.amazonaws.com/evil')), denied(SERVICE_PATH)),
  probe("rewrites Identity Center's SAML provider to sign itself into its (never quarantined) roles",
    agent('iam:UpdateSAMLProvider', `arn:aws:iam::${A.dev}:saml-provider/AWSSSO_0123456789abcdef_DO_NOT_DELETE`), denied(PROVIDER)),
  probe('takes its account out of the organization, and so out of every SCP', agent('organizations:LeaveOrganization', '*'), denied(STAY)),
  probe("freezes Guardrail's StackSet stack in its account with a stack policy", agent('cloudformation:SetStackPolicy', arn.stack('StackSet-guardrail-forwarding-0001', A.dev)), denied(STACKS)),
  probe("deletes Guardrail's member-roles stack", agent('cloudformation:DeleteStack', arn.stack('StackSet-guardrail-member-roles-0001', A.dev)), denied(STACKS)),
  probe('puts its own KMS key on the default bus, to disable it later and stop the forwarding rules', agent('events:UpdateEventBus', `arn:aws:events:us-east-1:${A.dev}:event-bus/default`), denied(RULES)),
  probe('rewrites the trust of a break-glass role to assume it', agent('iam:UpdateAssumeRolePolicy', WHO.devBreakGlass), denied(EXEMPT)),
  probe('attaches a policy to a break-glass role', agent('iam:AttachRolePolicy', WHO.devBreakGlass), denied(EXEMPT)),
  probe('puts an inline policy on a break-glass role', agent('iam:PutRolePolicy', WHO.devBreakGlass), denied(EXEMPT)),
  probe('tags a break-glass role', agent('iam:TagRole', WHO.devBreakGlass, tags('team')), denied(EXEMPT)),
  probe('rewrites the trust of the StackSets execution role', agent('iam:UpdateAssumeRolePolicy', WHO.stackSets), denied(EXEMPT)),
  probe('rewrites the trust of a waiver setter to set its own waivers', agent('iam:UpdateAssumeRolePolicy', WHO.waiverSetter), denied(EXEMPT)),
  probe('gives a waiver setter more rights', agent('iam:PutRolePolicy', WHO.waiverSetter), denied(EXEMPT)),
  probe('rewrites the trust of the bootstrap role (protected: never quarantined) to work as it', agent('iam:UpdateAssumeRolePolicy', WHO.devBootstrap), denied(EXEMPT)),
  probe('puts a policy on the bootstrap role', agent('iam:PutRolePolicy', WHO.devBootstrap), denied(EXEMPT)),
  probe('passes a break-glass role to a Lambda function it writes', agent('iam:PassRole', WHO.devBreakGlass, { 'iam:PassedToService': 'lambda.amazonaws.com' }), denied(EXEMPT)),
  probe('passes the StackSets role to a stack it updates', agent('iam:PassRole', WHO.stackSets, { 'iam:PassedToService': 'cloudformation.amazonaws.com' }), denied(EXEMPT)),
  probe('assumes a break-glass role', agent('sts:AssumeRole', WHO.devBreakGlass), denied('implicit:resource')),
  probe('assumes the StackSets execution role', agent('sts:AssumeRole', WHO.stackSets), denied('implicit:resource')),
  probe('assumes the bootstrap role', agent('sts:AssumeRole', WHO.devBootstrap), denied('implicit:resource')),
  probe("assumes Guardrail's member role", agent('sts:AssumeRole', WHO.devQuarantine), denied('implicit:resource')),
  // Guardrail's own roles in the account.
  probe("deletes Guardrail's member role (and would recreate it trusting itself)", agent('iam:DeleteRole', WHO.devQuarantine), denied(EXEMPT)),
  probe("puts a policy on Guardrail's member role", agent('iam:PutRolePolicy', WHO.devQuarantine), denied(EXEMPT)),
  probe("rewrites the trust of Guardrail's member role", agent('iam:UpdateAssumeRolePolicy', WHO.devTags), denied(EXEMPT)),
  probe("puts a permissions boundary on Guardrail's member role", agent('iam:PutRolePermissionsBoundary', WHO.devTags), denied(EXEMPT)),
  probe('deletes the forwarding role\'s policy so the account goes dark', agent('iam:DeleteRolePolicy', forwarding), denied(EXEMPT)),
  probe('rewrites the forwarding role\'s trust', agent('iam:UpdateAssumeRolePolicy', forwarding), denied(EXEMPT)),
  probe('deletes the rule forwarding its calls to be counted', agent('events:DeleteRule', arn.rule('guardrail-api-calls', A.dev)), denied(RULES)),
  probe('points the forwarding of API calls elsewhere', agent('events:PutTargets', arn.rule('guardrail-api-calls', A.dev)), denied(RULES)),
  probe('disables the rule that forwards its alarms', agent('events:DisableRule', arn.rule('guardrail-agent-quarantine-alarms', A.dev)), denied(RULES)),
  probe('rewrites the alarm rule\'s pattern', agent('events:PutRule', arn.rule('guardrail-agent-quarantine-alarms', A.dev)), denied(RULES)),
  // Undoing a quarantine.
  probe('the isolated agent removes its own deny policy', { as: WHO.quarantinedAgent, do: 'iam:DeleteRolePolicy', on: WHO.quarantinedAgent },
    denied('guardrail-quarantine#GuardrailQuarantine', QUARANTINE)),
  probe("another admin removes the isolated agent's deny policy", agent('iam:DeleteRolePolicy', WHO.quarantinedAgent), denied(QUARANTINE)),
  probe('removes the quarantine tag, after which the deny is no longer protected', agent('iam:UntagRole', WHO.quarantinedAgent, tags('guardrail:quarantine')),
    denied(QUARANTINE, TAGS)),
  probe('removes the quarantine tag spelled Guardrail:Quarantine (IAM tag keys ignore case, StringLike does not)',
    agent('iam:UntagRole', WHO.quarantinedAgent, tags('Guardrail:Quarantine')), denied(QUARANTINE, TAGS_ANY_CASE)),
  probe('detaches a policy from the isolated agent', agent('iam:DetachRolePolicy', WHO.quarantinedAgent), denied(QUARANTINE)),
  probe('puts a permissions boundary on the isolated agent', agent('iam:PutRolePermissionsBoundary', WHO.quarantinedAgent), denied(QUARANTINE)),
  probe("rewrites the isolated agent's trust", agent('iam:UpdateAssumeRolePolicy', WHO.quarantinedAgent), denied(QUARANTINE)),
  probe('creates an access key for an isolated user', agent('iam:CreateAccessKey', WHO.quarantinedUser), denied(QUARANTINE)),
  probe('gives an isolated user a console password', agent('iam:CreateLoginProfile', WHO.quarantinedUser), denied(QUARANTINE)),
  probe('the agent isolated through the boundary writes itself an allow-all policy', { as: WHO.boundedAgent, do: 'iam:PutRolePolicy', on: WHO.boundedAgent },
    denied(BOUNDARY, QUARANTINE)),
  probe('the agent isolated through the boundary removes the boundary', { as: WHO.boundedAgent, do: 'iam:DeleteRolePermissionsBoundary', on: WHO.boundedAgent },
    denied(BOUNDARY, QUARANTINE)),
  probe('the agent isolated through the boundary works on through a role it made before', { as: WHO.boundedAgent, do: 'sts:AssumeRole', on: role('helper') },
    denied(BOUNDARY)),
  probe("another admin removes the isolated agent's boundary", agent('iam:DeleteRolePermissionsBoundary', WHO.boundedAgent), denied(QUARANTINE)),
  probe("removes an isolated user's quarantine tag in capitals", agent('iam:UntagUser', WHO.quarantinedUser, tags('GUARDRAIL:QUARANTINE')), denied(QUARANTINE, TAGS_ANY_CASE)),
  // Waivers and Guardrail's other tags.
  probe('sets itself a waiver', agent('iam:TagRole', WHO.devAgent, tags('guardrail:waiver')), denied(TAGS)),
  probe('sets itself a waiver spelled Guardrail:Waiver', agent('iam:TagRole', WHO.devAgent, tags('Guardrail:Waiver')), denied(WAIVER_ANY_CASE)),
  probe('removes the agent tag that makes it counted (spelled Guardrail:Agent)', agent('iam:UntagRole', WHO.devAgent, tags('Guardrail:Agent')), denied(TAGS_ANY_CASE)),
  probe('waives a Lambda function', agent('lambda:TagResource', arn.fn('agent-tool', A.dev), tags('guardrail:waiver')), denied(TAGS)),
  probe('waives a table, key spelled GUARDRAIL:WAIVER', agent('dynamodb:TagResource', arn.table('agent-state', A.dev), tags('GUARDRAIL:WAIVER')), denied(WAIVER_ANY_CASE)),
  // Guardrail's dead-letter queues admit EventBridge for Guardrail's own rules only.
  probe("floods a dead-letter queue of Guardrail's to bury real failures", agent('sqs:SendMessage', arn.queue('guardrail-tag-enforcer-dlq')),
    denied('implicit:resource')),
  probe("has EventBridge dead-letter into Guardrail's queue from a rule of its own named like Guardrail's", { as: 'events.amazonaws.com', do: 'sqs:SendMessage', on: arn.queue('guardrail-agent-quarantine-dlq'), context: { 'aws:SourceArn': arn.rule('guardrail-agent-quarantine-calls', A.dev, 'guardrail'), 'aws:SourceAccount': A.dev } },
    denied('implicit:resource')),
  probe('waives a queue', agent('sqs:TagQueue', arn.queue('agent-jobs', A.dev), tags('guardrail:waiver')), denied(TAGS)),
  probe('waives a topic', agent('sns:TagResource', arn.topic('agent-news', A.dev), tags('guardrail:waiver')), denied(TAGS)),
  probe('waives a KMS key', agent('kms:TagResource', `arn:aws:kms:us-east-1:${A.dev}:key/11111111-2222-3333-4444-555555555555`, tags('guardrail:waiver')), denied(TAGS)),
  probe('creates a role already waived', agent('iam:CreateRole', role('agents/helper'), tags('guardrail:waiver')), denied(TAGS)),
  probe('creates a user already waived', agent('iam:CreateUser', arn.user(A.dev, 'helper'), tags('guardrail:waiver')), denied(TAGS)),
  probe('launches an instance tagged with a waiver (tag on create)', agent('ec2:CreateTags', arn.ec2('instance', 'i-0123456789abcdef0'),
    { ...tags('guardrail:waiver'), 'ec2:CreateAction': 'RunInstances' }), denied(TAGS)),
  probe('launches an instance with a waiver in its TagSpecifications', agent('ec2:RunInstances', arn.ec2('instance', '*'), tags('Guardrail:Waiver')), denied(WAIVER_ANY_CASE)),
  probe("tags an alarm with guardrail:agent-role to have another agent's role isolated", agent('cloudwatch:TagResource', watchedAlarm, tags('guardrail:agent-role')), denied(TAGS)),
  probe('creates such an alarm in one call', agent('cloudwatch:PutMetricAlarm', arn.alarm('trap', A.dev), tags('Guardrail:Agent-Role')), denied(TAGS_ANY_CASE)),
  probe('forces the alarm watching another role into ALARM', agent('cloudwatch:SetAlarmState', watchedAlarm), denied(ALARMS)),
  probe('deletes the alarm that watches it', agent('cloudwatch:DeleteAlarms', watchedAlarm), denied(ALARMS)),
  probe('turns the alarm that watches it into a composite that never fires', agent('cloudwatch:PutCompositeAlarm', watchedAlarm), denied(ALARMS)),
  residual('waives an S3 bucket with PutBucketTagging, which AWS authorizes without aws:TagKeys',
    agent('s3:PutBucketTagging', arn.bucket('agent-data')), allowed('AdministratorAccess#AdministratorAccess'),
    'tag-enforcer receives PutBucketTagging (forwarding rule guardrail-tag-enforcer) and removes a waiver no setter set, with an alert; the daily sweep reports waivers it finds'),
  // Names at other paths and in other cases are nobody special.
  probe("a role at another path named like Guardrail's execution role is not spared by the SCPs",
    { as: role('agents/guardrail-agent-quarantine-lambda'), do: 'iam:PutRolePolicy', on: WHO.devTags }, denied(EXEMPT)),
  probe('a role named Break-Glass-Admin is not spared by the SCPs', { as: role('Break-Glass-Admin'), do: 'iam:DeleteRolePolicy', on: WHO.quarantinedAgent }, denied(QUARANTINE)),
  residual('creates a role named GUARDRAIL-TAG-ENFORCER (IAM names ignore case, ArnLike does not) in a new account before the StackSet arrives',
    agent('iam:CreateRole', role('GUARDRAIL-TAG-ENFORCER')), allowed('AdministratorAccess#AdministratorAccess'),
    'Guardrail recognises its roles by exact name and path, so the squatter gains nothing; the StackSet instance fails on the taken name (visible in CloudFormation), and the account stays unreachable for the tag enforcer until an administrator deletes the role'),
  residual('puts forged events on the central bus (the bus admits any principal of the organization)',
    agent('events:PutEvents', arn.bus('guardrail')), allowed('AdministratorAccess#AdministratorAccess', 'bus-policy#OrganizationAccountsPutEvents'),
    'EventBridge refuses aws.* sources in PutEvents, and every function rejects events of other sources as untrusted-source (shared/src/event/mod.rs)'),
  residual('works through a role of its own whose name no agent pattern matches (its calls are not counted)',
    agent('sts:AssumeRole', role('helper')), allowed('AdministratorAccess#AdministratorAccess', 'trust:helper#AccountAdministrators'),
    "the AssumeRole is itself one of the agent's counted calls and the role's creation is tag-checked; to close it, deny agents iam:CreateRole and sts:AssumeRole with a permissions boundary (issue 28 compiles such SCPs from the policy)"),
  residual('turns GuardDuty off in its account', agent('guardduty:DeleteDetector', `arn:aws:guardduty:us-east-1:${A.dev}:detector/12abc34d567e8fa901bc2d34e56789f0`),
    allowed('AdministratorAccess#AdministratorAccess'),
    'GuardDuty refuses to be disabled in a member account while the delegated administrator auto-enables all members (autoEnableOrganizationMembers = ALL; GuardDuty API reference, DisassociateFromAdministratorAccount): deploy GuardDuty so; an SCP denying it is issue 28'),
  residual("fills its role's 50 tag slots so that the quarantine tag cannot go on",
    agent('iam:TagRole', WHO.devAgent, tags('a', 'b', 'c')), allowed('AdministratorAccess#AdministratorAccess'),
    'the deny policy goes on anyway (Action::runs_despite a quota error), so the agent is contained, though its deny is unprotected against a second identity of its own; the event fails, alerts and is dead-lettered, and no record is written (tests/tests/agent_quarantine.rs)'),
  residual("fills its role's inline policy quota (10,240 characters) so that the deny policy cannot go on",
    agent('iam:PutRolePolicy', WHO.devAgent), allowed('AdministratorAccess#AdministratorAccess'),
    "isolating a role also sets its permissions boundary to guardrail-isolate, the one slot an agent cannot fill beforehand (a pending record keeps the boundary it replaces), so the role is isolated whatever its inline policies; revoke-sessions has no boundary and fails, alerted, for a person to act (cli/tests/release.rs)"),
  probe('rewrites the isolation boundary to allow everything before it is used on it', agent('iam:CreatePolicyVersion', isolation), denied(POLICIES)),
  probe('deletes the isolation boundary', agent('iam:DeletePolicy', isolation), denied(POLICIES)),
  probe('creates a guardrail-isolate of its own in a new account before the StackSet does', agent('iam:CreatePolicy', isolation), denied(POLICIES)),
  residual('keeps cluster-admin in EKS after its quarantine (EKS tokens are presigned sts:GetCallerIdentity calls, which no deny stops)',
    agent('eks:CreateAccessEntry', `arn:aws:eks:us-east-1:${A.dev}:cluster/agents`), allowed('AdministratorAccess#AdministratorAccess'),
    'not yet closed: the quarantine does not remove EKS access entries; deny agents eks:CreateCluster and eks:CreateAccessEntry (issue 28 compiles agents\' deny_actions into SCPs)'),
  residual('works in a region the forwarding StackSet does not cover (its calls are not counted there)',
    agent('ec2:RunInstances', arn.ec2('instance', '*'), { 'aws:RequestedRegion': 'eu-west-1' }), allowed('AdministratorAccess#AdministratorAccess'),
    'REGIONS must hold every region agents may use; an SCP denying the others is issue 28, and findings from other regions issue 26'),
  residual('reads secrets at any rate (read-only calls are not forwarded by an ENABLED rule)',
    agent('secretsmanager:GetSecretValue', `arn:aws:secretsmanager:us-east-1:${A.dev}:secret:db-AbCdEf`), allowed('AdministratorAccess#AdministratorAccess'),
    'rule state ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS would count them, at the cost of one event per read (issue 26)'),
  residual('has Auto Scaling tag its instances with a waiver from a launch template (tagged by a service-linked role, which SCPs do not govern)',
    agent('autoscaling:CreateAutoScalingGroup', `arn:aws:autoscaling:us-east-1:${A.dev}:autoScalingGroup:0a1b2c3d-0000-4000-8000-0123456789ab:autoScalingGroupName/agent-fleet`),
    allowed('AdministratorAccess#AdministratorAccess'),
    'the launch template carrying the waiver is created by the agent, and its CreateLaunchTemplate event is tag-checked (the waiver in its instance tags is not yet read); the daily sweep reports waived resources'),
  // What people, StackSets and Guardrail do next to these denies.
  nearMiss('a person creates an ordinary role', [EXEMPT], { as: WHO.developer, do: 'iam:CreateRole', on: role('team-app') }, allowed('AdministratorAccess#AdministratorAccess')),
  nearMiss('a person passes a service-linked role to Auto Scaling', [SERVICE_PATH, EXEMPT], { as: WHO.developer, do: 'iam:PassRole',
    on: role('aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_team'), context: { 'iam:PassedToService': 'autoscaling.amazonaws.com' } },
  allowed('AdministratorAccess#AdministratorAccess')),
  nearMiss('a person adds an identity provider of their own', [PROVIDER], { as: WHO.developer, do: 'iam:CreateSAMLProvider', on: `arn:aws:iam::${A.dev}:saml-provider/team-idp` }, allowed()),
  nearMiss('break-glass takes an account out of the organization on purpose', [STAY], { as: WHO.devBreakGlass, do: 'organizations:LeaveOrganization', on: '*' }, allowed()),
  nearMiss('a person versions a managed policy of their own', [POLICIES], { as: WHO.developer, do: 'iam:CreatePolicyVersion', on: `arn:aws:iam::${A.dev}:policy/team-app` }, allowed()),
  nearMiss('StackSets updates the isolation boundary', [POLICIES], { as: WHO.stackSets, do: 'iam:CreatePolicyVersion', on: isolation }, allowed()),
  nearMiss('a person updates a stack of their own', [STACKS], { as: WHO.developer, do: 'cloudformation:UpdateStack', on: arn.stack('team-app', A.dev) }, allowed()),
  nearMiss("StackSets updates Guardrail's stack in the account", [STACKS], { as: WHO.stackSets, do: 'cloudformation:UpdateStack', on: arn.stack('StackSet-guardrail-forwarding-0001', A.dev) }, allowed()),
  nearMiss('a person puts a key of their own on a bus of their own', [RULES], { as: WHO.developer, do: 'events:UpdateEventBus', on: `arn:aws:events:us-east-1:${A.dev}:event-bus/team-bus` }, allowed()),
  nearMiss('a person passes an ordinary role to Lambda', [EXEMPT], { as: WHO.developer, do: 'iam:PassRole', on: role('team-app'), context: { 'iam:PassedToService': 'lambda.amazonaws.com' } },
    allowed('AdministratorAccess#AdministratorAccess')),
  nearMiss('StackSets creates the member roles', [EXEMPT], { as: WHO.stackSets, do: 'iam:CreateRole', on: role('guardrail-agent-quarantine') }, allowed()),
  nearMiss('StackSets creates the waiver setters\' roles', [EXEMPT], { as: WHO.stackSets, do: 'iam:CreateRole', on: role('security-waivers/waiver-setter') }, allowed()),
  nearMiss('break-glass changes its own trust in an emergency', [EXEMPT], { as: WHO.devBreakGlass, do: 'iam:UpdateAssumeRolePolicy', on: WHO.devBreakGlass }, allowed()),
  nearMiss('StackSets updates the forwarding rules', [RULES], { as: WHO.stackSets, do: 'events:PutRule', on: arn.rule('guardrail-api-calls', A.dev) }, allowed()),
  nearMiss('a person writes rules of their own', [RULES], { as: WHO.developer, do: 'events:PutRule', on: arn.rule('team-nightly', A.dev) }, allowed()),
  nearMiss('a person changes the policies of a role that is not quarantined', [QUARANTINE], { as: WHO.developer, do: 'iam:PutRolePolicy', on: WHO.devAgent }, allowed()),
  nearMiss('a person creates an access key for a user that is not quarantined', [QUARANTINE], { as: WHO.developer, do: 'iam:CreateAccessKey', on: WHO.agentUser }, allowed()),
  nearMiss("Guardrail's release removes its deny policy", [QUARANTINE], { as: WHO.devQuarantine, do: 'iam:DeleteRolePolicy', on: WHO.quarantinedAgent },
    allowed('guardrail-agent-quarantine#QuarantineAndRelease')),
  nearMiss("Guardrail's release removes the quarantine tag", [QUARANTINE, TAGS, TAGS_ANY_CASE],
    { as: WHO.devQuarantine, do: 'iam:UntagRole', on: WHO.quarantinedAgent, context: tags('guardrail:quarantine') }, allowed('guardrail-agent-quarantine#QuarantineAndRelease')),
  nearMiss("Guardrail's release removes the isolation boundary", [QUARANTINE], { as: WHO.devQuarantine, do: 'iam:DeleteRolePermissionsBoundary', on: WHO.boundedAgent },
    allowed('guardrail-agent-quarantine#IsolateThroughTheBoundary')),
  nearMiss('an agent not isolated keeps working: the boundary binds only the role it is set on', [BOUNDARY], agent('ec2:RunInstances', arn.ec2('instance', '*')),
    allowed('AdministratorAccess#AdministratorAccess')),
  nearMiss('break-glass removes a quarantine by hand', [QUARANTINE], { as: WHO.devBreakGlass, do: 'iam:DeleteRolePolicy', on: WHO.quarantinedAgent }, allowed()),
  nearMiss('a person tags resources with the keys the tag rule requires', [TAGS, TAGS_ANY_CASE, WAIVER_ANY_CASE],
    { as: WHO.developer, do: 'iam:TagRole', on: WHO.devAgent, context: tags('Environment', 'Owner') }, allowed()),
  nearMiss('a waiver setter sets a waiver', [TAGS, WAIVER_ANY_CASE, SETTERS], { as: WHO.waiverSetter, do: 'iam:TagRole', on: WHO.devAgent, context: tags('guardrail:waiver') }, allowed()),
  nearMiss('a waiver setter waives a Lambda function', [TAGS, WAIVER_ANY_CASE, SETTERS], { as: WHO.waiverSetter, do: 'lambda:TagResource', on: arn.fn('agent-tool', A.dev), context: tags('guardrail:waiver') }, allowed()),
  probe('a waiver setter sets a quarantine tag', { as: WHO.waiverSetter, do: 'iam:TagRole', on: WHO.devAgent, context: tags('guardrail:quarantine') }, denied(SETTERS, TAGS_ANY_CASE)),
  probe('a waiver setter sets an agent tag Guardrail does not know', { as: WHO.waiverSetter, do: 'iam:TagRole', on: WHO.devAgent, context: tags('guardrail:agent-x') }, denied(SETTERS)),
  probe('a waiver setter sets a violation tag spelled Guardrail:Violation', { as: WHO.waiverSetter, do: 'ec2:CreateTags', on: arn.ec2('instance', 'i-0123456789abcdef0'), context: tags('Guardrail:Violation') },
    denied(TAGS_ANY_CASE)),
  nearMiss('a person sets the state of an alarm no agent is tied to', [ALARMS], { as: WHO.developer, do: 'cloudwatch:SetAlarmState', on: arn.alarm('team-latency', A.dev) }, allowed()),
  nearMiss('a person deletes an alarm no agent is tied to', [ALARMS], { as: WHO.developer, do: 'cloudwatch:DeleteAlarms', on: arn.alarm('team-latency', A.dev) }, allowed())
]
