import { CapabilityDeclarationError, MappingError } from '@trellis/device-sdk'
import { AutomationRefused } from '../automations/automations.js'
import { CommandRefused } from '../commands/service.js'
import { EmailTakenError, ModelNameTakenError } from '../registry/registry.js'
import { QuotaExceeded } from '../registry/quotas.js'
import { ScheduleRefused } from '../schedules/scheduler.js'
import { StreamLimitError } from '../stream/live.js'
import { errors, type ApiError, type ErrorCode } from './errors.js'

interface DomainErrorRule<E extends Error> {
  type: abstract new (...args: any[]) => E
  /** Codes it can become, for the routes that declare it. */
  codes: ErrorCode[]
  toApi (err: E): ApiError
}

const rule = <E extends Error>(r: DomainErrorRule<E>): DomainErrorRule<E> => r

/**
 * How the domain's refusals become HTTP answers: the one table the error
 * handler reads, so a route lets them through instead of catching each.
 */
export const domainErrors = [
  rule({
    type: CommandRefused,
    codes: ['INVALID_COMMAND', 'DEVICE_OFFLINE', 'DEVICE_BUSY'],
    toApi: (err) => err.reason === 'invalid' ? errors.invalidCommand(err.message) : err.reason === 'offline' ? errors.deviceOffline(err.message) : errors.deviceBusy(err.message),
  }),
  rule({
    type: ScheduleRefused,
    codes: ['INVALID_SCHEDULE', 'SCHEDULE_LIMIT'],
    toApi: (err) => err.reason === 'limit' ? errors.scheduleLimit(err.limit!) : errors.invalidSchedule(err.message),
  }),
  rule({
    type: AutomationRefused,
    codes: ['INVALID_AUTOMATION', 'AUTOMATION_LIMIT'],
    toApi: (err) => err.reason === 'limit' ? errors.automationLimit(err.limit!) : errors.invalidAutomation(err.message),
  }),
  rule({ type: EmailTakenError, codes: ['EMAIL_TAKEN'], toApi: () => errors.emailTaken() }),
  rule({ type: ModelNameTakenError, codes: ['MODEL_NAME_TAKEN'], toApi: (err) => errors.modelNameTaken(err.message) }),
  rule({ type: CapabilityDeclarationError, codes: ['INVALID_MODEL'], toApi: (err) => errors.invalidModel(err.message) }),
  rule({ type: MappingError, codes: ['INVALID_MAPPING'], toApi: (err) => errors.invalidMapping(err.message) }),
  rule({ type: QuotaExceeded, codes: ['QUOTA_EXCEEDED'], toApi: (err) => errors.quotaExceeded(err.message) }),
  rule({ type: StreamLimitError, codes: ['TOO_MANY_STREAMS'], toApi: (err) => errors.tooManyStreams(err.limit) }),
] as const

/** The API error a domain error stands for, or null when it is not one of the table's. */
export function apiErrorOf (err: unknown): ApiError | null {
  for (const r of domainErrors as readonly DomainErrorRule<Error>[]) if (err instanceof r.type) return r.toApi(err)
  return null
}
