import type { ZodError } from 'zod'

/** An error the API answers with: an HTTP status, a stable code and a message that says what to do. */
export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string, message: string, readonly headers?: Record<string, string>) {
    super(message)
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
    new ApiError(400, where === 'body' ? 'INVALID_BODY' : 'INVALID_REQUEST', `invalid ${where}: ${describeZod(where, err)}`),
  badRequest: (message: string) => new ApiError(400, 'BAD_REQUEST', message),
  unauthorized: (message = 'a valid "Authorization: Bearer <token>" header is required') => new ApiError(401, 'UNAUTHORIZED', message, { 'www-authenticate': 'Bearer' }),
  invalidCredentials: () => new ApiError(401, 'INVALID_CREDENTIALS', 'wrong email or password'),
  forbidden: (who: string) => new ApiError(403, 'FORBIDDEN', `this route is for ${who}`),
  notFound: (what: string, id: string) => new ApiError(404, 'NOT_FOUND', `no ${what} ${id} that you can see`),
  routeNotFound: (method: string, url: string) => new ApiError(404, 'ROUTE_NOT_FOUND', `no route ${method} ${url.split('?')[0]}; see /docs`),
  unknownModel: (id: string) => new ApiError(422, 'UNKNOWN_MODEL', `no model ${id} of yours; declare it with POST /v1/models`),
  invalidModel: (message: string) => new ApiError(422, 'INVALID_MODEL', message),
  invalidMapping: (message: string) => new ApiError(422, 'INVALID_MAPPING', `the mapping is not valid for this model: ${message}`),
  unknownCapability: (capability: string, model: string) => new ApiError(422, 'UNKNOWN_CAPABILITY', `model ${model} has no capability ${capability}`),
  invalidClaimCode: () => new ApiError(404, 'INVALID_CLAIM_CODE', 'no unclaimed device has this claim code; check the code on the appliance'),
  emailTaken: () => new ApiError(409, 'EMAIL_TAKEN', 'an owner with this email exists; log in with POST /v1/sessions'),
  quotaExceeded: (message: string) => new ApiError(422, 'QUOTA_EXCEEDED', message),
  modelNameTaken: (name: string) => new ApiError(409, 'MODEL_NAME_TAKEN', `you already have a model named ${name}`),
  payloadTooLarge: (limit: number) => new ApiError(413, 'PAYLOAD_TOO_LARGE', `request body is over the ${limit}-byte limit`),
  unsupportedMediaType: () => new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send JSON with "Content-Type: application/json"'),
  invalidCommand: (message: string) => new ApiError(422, 'INVALID_COMMAND', message),
  deviceOffline: (message: string) => new ApiError(409, 'DEVICE_OFFLINE', message),
  deviceBusy: (message: string) => new ApiError(429, 'DEVICE_BUSY', message),
  invalidSchedule: (message: string) => new ApiError(422, 'INVALID_SCHEDULE', message),
  scheduleLimit: (limit: number) => new ApiError(409, 'SCHEDULE_LIMIT', `you have ${limit} schedules, the limit; delete one first`),
  tooManyStreams: (limit: number) => new ApiError(429, 'TOO_MANY_STREAMS', `you have ${limit} live streams open, the limit; close one first`),
  rateLimited: (what: string, retryAfterSeconds: number) => new ApiError(429, 'RATE_LIMITED', `too many ${what}; try again in ${retryAfterSeconds} s`, { 'retry-after': String(retryAfterSeconds) }),
  storageUnavailable: (message: string) => new ApiError(503, 'STORAGE_UNAVAILABLE', message),
  internal: () => new ApiError(500, 'INTERNAL', 'something went wrong on our side; it has been logged'),
} as const
