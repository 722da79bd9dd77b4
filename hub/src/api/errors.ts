import type { ZodError } from 'zod'

/** Every error code the API answers with, and its HTTP status: the one catalogue. */
export const errorStatus = {
  INVALID_BODY: 400,
  INVALID_REQUEST: 400,
  BAD_REQUEST: 400,
  BODY_TOO_DEEP: 400,
  UNAUTHORIZED: 401,
  INVALID_CREDENTIALS: 401,
  FORBIDDEN: 403,
  CSRF_TOKEN_MISMATCH: 403,
  NO_GRANT: 403,
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  INVALID_CLAIM_CODE: 404,
  DEVICE_OFFLINE: 409,
  DEVICE_CLAIMED: 409,
  EMAIL_TAKEN: 409,
  MODEL_NAME_TAKEN: 409,
  SCHEDULE_LIMIT: 409,
  AUTOMATION_LIMIT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNKNOWN_MODEL: 422,
  UNKNOWN_GATEWAY: 422,
  INVALID_MODEL: 422,
  INVALID_MAPPING: 422,
  UNKNOWN_CAPABILITY: 422,
  INVALID_COMMAND: 422,
  INVALID_SCHEDULE: 422,
  INVALID_AUTOMATION: 422,
  QUOTA_EXCEEDED: 422,
  DEVICE_BUSY: 429,
  TOO_MANY_STREAMS: 429,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  STORAGE_UNAVAILABLE: 503,
} as const
export type ErrorCode = keyof typeof errorStatus

/** An error the API answers with: an HTTP status, a stable code and a message that says what to do. */
export class ApiError extends Error {
  readonly status: number
  constructor (readonly code: ErrorCode, message: string, readonly headers?: Record<string, string>) {
    super(message)
    this.status = errorStatus[code]
  }
}

function describeZod (where: string, err: ZodError): string {
  return err.issues.slice(0, 5).map((i) => {
    const path = i.path.length ? i.path.join('.') : where
    return `${path}: ${i.message}`
  }).join('; ')
}

/** The one catalogue of API errors. */
export const errors = {
  invalid: (where: 'body' | 'query' | 'params', err: ZodError) =>
    new ApiError(where === 'body' ? 'INVALID_BODY' : 'INVALID_REQUEST', `invalid ${where}: ${describeZod(where, err)}`),
  badRequest: (message: string) => new ApiError('BAD_REQUEST', message),
  bodyTooDeep: (limit: number) => new ApiError('BODY_TOO_DEEP', `the JSON body nests deeper than ${limit} levels; flatten it`),
  unauthorized: (message = 'a valid "Authorization: Bearer <token>" header is required') => new ApiError('UNAUTHORIZED', message, { 'www-authenticate': 'Bearer' }),
  invalidCredentials: () => new ApiError('INVALID_CREDENTIALS', 'wrong email or password'),
  csrfTokenMismatch: () => new ApiError('CSRF_TOKEN_MISMATCH', 'a request with the console session cookie needs its x-csrf-token header (from GET /v1/console/session); reload the console'),
  forbidden: (who: string) => new ApiError('FORBIDDEN', `this route is for ${who}`),
  /** A maker or app reads what no grant of the device's owner allows (a capability, or a resolution). */
  noGrant: (message: string) => new ApiError('NO_GRANT', message),
  notFound: (what: string, id: string) => new ApiError('NOT_FOUND', `no ${what} ${id} that you can see`),
  routeNotFound: (method: string, url: string) => new ApiError('ROUTE_NOT_FOUND', `no route ${method} ${url.split('?')[0]}; see /docs`),
  unknownGateway: (id: string) => new ApiError('UNKNOWN_GATEWAY', `no gateway ${id} of yours; a child is provisioned under a device of yours whose model's mapping has a "gateway" section`),
  unknownModel: (id: string) => new ApiError('UNKNOWN_MODEL', `no model ${id} of yours; declare it with POST /v1/models`),
  invalidModel: (message: string) => new ApiError('INVALID_MODEL', message),
  invalidMapping: (message: string) => new ApiError('INVALID_MAPPING', `the mapping is not valid for this model: ${message}`),
  unknownCapability: (capability: string, model: string) => new ApiError('UNKNOWN_CAPABILITY', `model ${model} has no capability ${capability}`),
  invalidClaimCode: () => new ApiError('INVALID_CLAIM_CODE', 'no unclaimed device has this claim code; check the code on the appliance'),
  quotaExceeded: (message: string) => new ApiError('QUOTA_EXCEEDED', message),
  emailTaken: () => new ApiError('EMAIL_TAKEN', 'an owner with this email exists; log in with POST /v1/sessions'),
  modelNameTaken: (name: string) => new ApiError('MODEL_NAME_TAKEN', `you already have a model named ${name}`),
  payloadTooLarge: (limit: number) => new ApiError('PAYLOAD_TOO_LARGE', `request body is over the ${limit}-byte limit`),
  unsupportedMediaType: () => new ApiError('UNSUPPORTED_MEDIA_TYPE', 'send JSON with "Content-Type: application/json"'),
  invalidCommand: (message: string) => new ApiError('INVALID_COMMAND', message),
  deviceOffline: (message: string) => new ApiError('DEVICE_OFFLINE', message),
  deviceClaimed: (id: string) => new ApiError('DEVICE_CLAIMED', `device ${id} is claimed: its owner sets its time zone now (PATCH /v1/devices/${id} with the owner's token)`),
  deviceBusy: (message: string) => new ApiError('DEVICE_BUSY', message),
  invalidSchedule: (message: string) => new ApiError('INVALID_SCHEDULE', message),
  scheduleLimit: (limit: number) => new ApiError('SCHEDULE_LIMIT', `you have ${limit} schedules, the limit; delete one first`),
  invalidAutomation: (message: string) => new ApiError('INVALID_AUTOMATION', message),
  automationLimit: (limit: number) => new ApiError('AUTOMATION_LIMIT', `you have ${limit} automations, the limit; delete one first`),
  tooManyStreams: (limit: number) => new ApiError('TOO_MANY_STREAMS', `you have ${limit} live streams open, the limit; close one first`),
  rateLimited: (what: string, retryAfterSeconds: number) => new ApiError('RATE_LIMITED', `too many ${what}; try again in ${retryAfterSeconds} s`, { 'retry-after': String(retryAfterSeconds) }),
  storageUnavailable: (message: string) => new ApiError('STORAGE_UNAVAILABLE', message),
  internal: () => new ApiError('INTERNAL', 'something went wrong on our side; it has been logged'),
} as const
